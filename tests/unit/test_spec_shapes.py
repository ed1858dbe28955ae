"""What the fuzzing of Rollouts and AnalysisTemplates found, kept as explicit rows: a value of
the wrong JSON type is an InvalidSpec naming its field (it crashed the parser or the planner,
and the engine retried it forever), and the messages of reference errors name the Rollout's
field that leads to them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shiftd.model.argo.rollout import InvalidSpecError
from shiftd.model.argo.shapes import ROLLOUT_SPEC, check_shape
from tests.support.world import World


def invalid_message(world: World) -> str:
    plan = world.plan()
    (condition,) = [c for c in plan.status.get("conditions") or ()
                    if c.get("reason") == "InvalidSpec"]
    return str(condition["message"])


def with_change(path: tuple[Any, ...], value: Any, *, analysis: bool = False) -> World:
    world = World.from_example("asm-host-split", with_analysis=analysis)
    node = world.rollout["spec"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return world


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        pytest.param(("selector", "matchLabels"), 1,
                     "spec.selector.matchLabels must be an object, got a number",
                     id="matchLabels a number (AttributeError)"),
        pytest.param(("template", "metadata", "labels"), True,
                     "spec.template.metadata.labels must be an object, got a boolean",
                     id="template labels a boolean (AttributeError)"),
        pytest.param(("template", "metadata"), [], "spec.template.metadata must be an object",
                     id="template metadata a list (AttributeError)"),
        pytest.param(("template", "spec"), 1.5, "spec.template.spec must be an object",
                     id="template spec a number (AttributeError)"),
        pytest.param(("strategy",), [], "spec.strategy must be an object, got a list",
                     id="strategy a list (AttributeError)"),
        pytest.param(("strategy", "canary", "trafficRouting", "istio"), [],
                     "spec.strategy.canary.trafficRouting.istio must be an object",
                     id="istio a list (AttributeError)"),
        pytest.param(("strategy", "canary", "trafficRouting", "istio", "virtualService",
                      "name"), True,
                     "spec.strategy.canary.trafficRouting.istio.virtualService.name must be a "
                     "string", id="virtualService name a boolean (TypeError)"),
        pytest.param(("strategy", "canary", "stableService"), ["a"],
                     "spec.strategy.canary.stableService must be a string, got a list",
                     id="stableService a list (unhashable)"),
        pytest.param(("strategy", "canary", "steps", 1), None,
                     "spec.strategy.canary.steps[1] must be an object, got null",
                     id="a null step"),
        pytest.param(("template", "spec", "containers", 0, "ports"), 221816777,
                     "spec.template.spec.containers[0].ports must be a list, got a number",
                     id="container ports a number (TypeError in the template defaults)"),
        pytest.param(("template", "spec", "containers", 0, "env"), [3],
                     "spec.template.spec.containers[0].env[0] must be an object",
                     id="an env entry a number"),
    ],
)
def test_a_field_of_the_wrong_type_is_invalid_spec_naming_it(path: tuple[Any, ...],
                                                             value: Any, message: str) -> None:
    assert message in invalid_message(with_change(path, value))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        pytest.param(("strategy", "canary", "analysis", "startingStep"), {"name": {}},
                     "spec.strategy.canary.analysis.startingStep must be an integer, got an "
                     "object", id="startingStep an object (TypeError in int())"),
        pytest.param(("strategy", "canary", "analysis"), 5,
                     "spec.strategy.canary.analysis must be an object, got a number",
                     id="analysis a number (AttributeError)"),
        pytest.param(("strategy", "canary", "analysis", "templates"), "x",
                     "spec.strategy.canary.analysis.templates must be a list",
                     id="templates a string (AttributeError)"),
        pytest.param(("strategy", "canary", "analysis", "templates", 0), None,
                     "spec.strategy.canary.analysis.templates[0] must be an object, got null",
                     id="a null template reference (AttributeError)"),
        pytest.param(("strategy", "canary", "analysis", "args", 0), None,
                     "spec.strategy.canary.analysis.args[0] must be an object, got null",
                     id="a null arg (AttributeError)"),
        pytest.param(("strategy", "canary", "analysis", "args", 1, "valueFrom"), True,
                     "spec.strategy.canary.analysis.args[1].valueFrom must be an object",
                     id="valueFrom a boolean (TypeError)"),
        pytest.param(("strategy", "canary", "analysis", "args", 1, "valueFrom", "fieldRef"),
                     {}, "spec.strategy.canary.analysis.args: fieldRef '' is not supported",
                     id="an empty fieldRef names the args"),
    ],
)
def test_an_analysis_field_of_the_wrong_type_is_invalid_spec_naming_it(
    path: tuple[Any, ...], value: Any, message: str
) -> None:
    assert message in invalid_message(with_change(path, value, analysis=True))


def test_a_template_arg_without_a_name_is_invalid_spec_naming_it() -> None:
    world = World.from_example("asm-host-split", with_analysis=True)
    template = world.templates[("AnalysisTemplate", "istio-success-rate")]
    template["spec"]["args"][1] = {"value": "x"}  # KeyError: 'name' before
    assert ("spec.strategy.canary.analysis.templates[0]: AnalysisTemplate "
            "'istio-success-rate': spec.args[1].name is required") in invalid_message(world)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        pytest.param(("strategy", "canary", "trafficRouting", "istio", "virtualService",
                      "routes"), ["0%"],
                     "spec.strategy.canary.trafficRouting: VirtualService "
                     "'istio-rollout-vsvc': HTTP route '0%' not found", id="a missing route"),
        pytest.param(("strategy", "canary", "trafficRouting", "istio", "virtualService",
                      "name"), "10s",
                     "spec.strategy.canary.trafficRouting: VirtualService '10s' not found",
                     id="a missing VirtualService"),
    ],
)
def test_a_routing_error_names_the_rollouts_traffic_routing(path: tuple[Any, ...],
                                                            value: Any, message: str) -> None:
    assert invalid_message(with_change(path, value)).endswith(message)


def test_a_null_field_counts_as_absent() -> None:
    spec = copy.deepcopy(World.from_example("asm-host-split").rollout["spec"])
    spec["strategy"]["canary"]["analysis"] = None
    check_shape(spec, ROLLOUT_SPEC, path="spec")
    with pytest.raises(InvalidSpecError, match=r"^spec.selector must be an object, got a list$"):
        check_shape({**spec, "selector": []}, ROLLOUT_SPEC, path="spec")


@pytest.mark.parametrize("duration", [0, "0s"])
def test_a_pause_of_no_time_is_passed_at_once_and_every_plan_stays_a_fixed_point(
    duration: object
) -> None:
    # found by fuzzing: the pause was recorded, then found over by a plan at the same instant
    world = World.from_example("asm-host-split")
    world.rollout["spec"]["strategy"]["canary"]["steps"][1]["pause"] = {"duration": duration}
    world.settle()
    world.set_image("argoproj/rollouts-demo:yellow")
    world.settle()  # the World checks every plan is a fixed point
    assert world.status["currentStepIndex"] == 3  # at step 3's indefinite pause
    assert world.weights() == (80, 20)  # (stable, canary)
