"""Fuzzing what users write, on the pure core (issue 12): hypothesis changes fields of the seeds'
Rollouts and AnalysisTemplates and of the example configuration to arbitrary JSON, as written
and as an API server serving shiftd's own CRDs would store them.

Whatever comes in, the planner returns a plan (never an exception), and a Rollout it refuses
carries an InvalidSpec message naming a field; a bad configuration is one ``ConfigError`` line
naming its key, and ``shiftd run --config`` exits 2 with that line and no traceback. The CI
form runs a fixed, small set (see ``tests.support.fuzzing``); the bugs it found are the rows
of ``test_spec_shapes.py``. The emulator side is ``tests/integration/test_daemon_fuzz.py``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from shiftd.cli.daemon import main as shiftd_main
from shiftd.config import ConfigError, load_settings, parse_settings
from shiftd.crds.render import crd_documents
from shiftd.decide.rollout.actions import Plan
from shiftd.sim.schema import compile_processor
from tests.support.fuzzing import ROLLOUT_EXTRA_FIELDS, Mutation, fuzz_settings, mutations
from tests.support.world import World

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "config" / "shiftd.yaml"
BASES = (("asm-host-split", False), ("asm-host-split", True), ("imesh-host-split", False),
         ("tsb-subset-skywalking", True), ("myapp-analysis", True))
LOADED = {base: World.from_example(base[0], with_analysis=base[1]) for base in BASES}


def world_of(base: tuple[str, bool]) -> World:
    return copy.deepcopy(LOADED[base])


ROLLOUT_MUTATIONS = {
    base: mutations(world.rollout, under=("spec",), extra_fields=ROLLOUT_EXTRA_FIELDS)
    for base, world in LOADED.items()}


def rollout_cases() -> st.SearchStrategy[tuple[tuple[str, bool], Mutation]]:
    return st.sampled_from(BASES).flatmap(
        lambda base: st.tuples(st.just(base), ROLLOUT_MUTATIONS[base]))


def stored_by_our_crd(rollout: dict[str, Any]) -> dict[str, Any] | None:
    """The Rollout as a server with shiftd's CRDs stores it; None when it refuses it."""
    processed, causes = OUR_ROLLOUT_SCHEMA(copy.deepcopy(rollout), None)
    return None if causes else processed


def _our_rollout_schema() -> Any:
    (crd,) = [d for d in crd_documents() if d["spec"]["names"]["kind"] == "Rollout"]
    (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
    return compile_processor(version["schema"]["openAPIV3Schema"])


OUR_ROLLOUT_SCHEMA = _our_rollout_schema()


def invalid_spec_message(plan: Plan) -> str | None:
    return next((str(c.get("message")) for c in plan.status.get("conditions") or ()
                 if c.get("reason") == "InvalidSpec"), None)


def refusal(plan: Plan, mutation: Mutation) -> str | None:
    """The plan's InvalidSpec message, which must name a field."""
    message = invalid_spec_message(plan)
    assert message is None or "spec." in message, (message, mutation.describe())
    return message


def assert_plans_and_names_the_field(world: World, mutation: Mutation) -> None:
    """Planned (never an exception), every plan a fixed point (the World checks), or refused
    naming a field; one it runs goes through an update as far as time takes it."""
    if refusal(world.settle(), mutation) is not None or "template" not in world.rollout["spec"]:
        return
    world.set_image("argoproj/rollouts-demo:fuzzed")
    for _ in range(40):
        plan = world.settle()
        if refusal(plan, mutation) is not None or plan.requeue_at is None:
            return
        world.now = max(world.now, plan.requeue_at)


@fuzz_settings(150)
@given(rollout_cases())
def test_a_fuzzed_rollout_is_planned_or_refused_naming_a_field(
    case: tuple[tuple[str, bool], Mutation]
) -> None:
    base, mutation = case
    world = world_of(base)
    world.rollout = mutation.applied(world.rollout)
    assert_plans_and_names_the_field(world, mutation)


@fuzz_settings(150)
@given(rollout_cases())
def test_a_fuzzed_rollout_stored_by_our_crds_is_planned_or_refused_naming_a_field(
    case: tuple[tuple[str, bool], Mutation]
) -> None:
    base, mutation = case
    world = world_of(base)
    stored = stored_by_our_crd(mutation.applied(world.rollout))
    assume(stored is not None)  # refused by the API server: the daemon never sees it
    assert stored is not None
    world.rollout = stored
    assert_plans_and_names_the_field(world, mutation)


TEMPLATE_KEY = ("AnalysisTemplate", "istio-success-rate")


@fuzz_settings(100)
@given(mutations(world_of(("asm-host-split", True)).templates[TEMPLATE_KEY], under=("spec",)))
def test_a_fuzzed_analysis_template_is_used_or_refused_naming_a_field(
    mutation: Mutation
) -> None:
    world = world_of(("asm-host-split", True))
    world.templates[TEMPLATE_KEY] = mutation.applied(world.templates[TEMPLATE_KEY])
    assert_plans_and_names_the_field(world, mutation)


# --- configuration files ---------------------------------------------------------------------

EXAMPLE_SETTINGS = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))


def config_key(mutation: Mutation) -> str:
    """The key a change addresses, dotted as the error names it (list items by index)."""
    ((path, _),) = mutation.changes
    return ".".join(str(part) for part in path)


def names_the_key(message: str, mutation: Mutation) -> bool:
    """Dotted (``kubernetes.qps: ...``), or section and key (``leaderElection: retryPeriod must
    be shorter than renewDeadline``, a rule between two keys)."""
    ((path, _),) = mutation.changes
    return config_key(mutation) in message or all(str(part) in message for part in path)


config_mutations = mutations(EXAMPLE_SETTINGS).filter(lambda m: len(m.changes) == 1)


def refused(data: Any) -> str | None:
    try:
        parse_settings(data, source="shiftd.yaml")
    except ConfigError as error:
        return str(error)
    return None


@fuzz_settings(200)
@given(config_mutations)
def test_a_fuzzed_configuration_is_accepted_or_refused_in_one_line_naming_the_key(
    mutation: Mutation
) -> None:
    message = refused(mutation.applied(EXAMPLE_SETTINGS))
    if message is not None:
        assert "\n" not in message
        assert names_the_key(message, mutation), (message, mutation.describe())


@fuzz_settings(100)
@given(st.text(max_size=80), st.integers(min_value=0, max_value=10_000))
def test_a_configuration_file_with_text_spliced_in_is_read_or_refused_in_one_line(
    junk: str, at: int
) -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    at = at % (len(text) + 1)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "shiftd.yaml"
        path.write_text(text[:at] + junk + text[at:], encoding="utf-8", errors="replace")
        with contextlib.suppress(ConfigError):
            load_settings(path)


@fuzz_settings(25)
@given(config_mutations)
def test_shiftd_run_exits_2_naming_the_key_of_a_bad_configuration(mutation: Mutation) -> None:
    data = mutation.applied(EXAMPLE_SETTINGS)
    assume(refused(data) is not None)  # a valid configuration would start the daemon
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "shiftd.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors), pytest.raises(SystemExit) as exited:
            shiftd_main(["run", "--config", str(path)])
    assert exited.value.code == 2
    lines = errors.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"shiftd: {path}: "), lines
    assert names_the_key(lines[0], mutation) and "Traceback" not in lines[0]
