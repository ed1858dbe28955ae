"""The template's and the steps' hashes: given at parse (the controller computes them once per
generation) they are used as they are, and plans made from them equal plans that compute them."""

from __future__ import annotations

import dataclasses

from shiftd.decide.rollout.hashing import (
    pod_template_hash,
    rollout_steps_hash,
    rollout_template_hash,
    steps_hash,
)
from shiftd.model.argo.rollout import Rollout
from tests.support.world import World


def hashed(rollout: Rollout) -> Rollout:
    """As the controller parses it: both hashes computed once."""
    return dataclasses.replace(rollout, template_hash=pod_template_hash(rollout.template),
                               steps_hash=steps_hash(rollout.canary.raw_steps))


def test_hashes_given_at_parse_are_used_and_absent_ones_computed() -> None:
    parsed = World.from_example("asm-host-split").parsed()
    assert (parsed.template_hash, parsed.steps_hash) == ("", "")
    assert rollout_template_hash(parsed) == pod_template_hash(parsed.template)
    assert rollout_steps_hash(parsed) == steps_hash(parsed.canary.raw_steps)
    given = dataclasses.replace(parsed, template_hash="given", steps_hash="steps")
    assert (rollout_template_hash(given), rollout_steps_hash(given)) == ("given", "steps")


def test_every_plan_of_an_update_is_the_same_with_hashes_given_at_parse() -> None:
    world, twin = World.from_example("asm-host-split"), World.from_example("asm-host-split")
    parse = twin.parsed
    twin.parsed = lambda: hashed(parse())  # type: ignore[method-assign]
    for each in (world, twin):
        each.settle()
        each.set_image("argoproj/rollouts-demo:yellow")
    for _ in range(12):  # the update's steps, one plan at a time
        plan = world.plan()
        assert twin.plan() == plan
        world.apply(plan)
        twin.apply(plan)
        world.advance(30)
        twin.advance(30)
    assert world.status["currentStepHash"] == twin.status["currentStepHash"]
