"""The operator patches are exactly those of ``kubectl argo rollouts`` (pure, in tables).

The expected values are the plugin's patch constants (``pkg/kubectl-argo-rollouts/cmd/*``),
spelled here as the JSON text the plugin sends, so a divergence shows as a text diff.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from shiftd.decide.rollout.operator import (
    OperatorError,
    OperatorPatch,
    abort_patch,
    current_set_weight,
    pause_patch,
    promote_patch,
    restart_patch,
    resume_patch,
    retry_patch,
    rollout_phase,
    set_image,
    step_progress,
    undo_patch,
)

Obj = dict[str, Any]

# The plugin's constants (promote.go, abort.go, retry.go, pause.go), verbatim.
UNPAUSE = '{"spec":{"paused":false}}'
CLEAR_PAUSE_CONDITIONS = '{"status":{"pauseConditions":null}}'
CLEAR_PAUSE_AND_CONTROLLER_PAUSE = (
    '{"status":{"pauseConditions":null, "controllerPause":false, "currentStepIndex":%d}}'
)
UNPAUSE_AND_CLEAR = '{"spec":{"paused":false},"status":{"pauseConditions":null}}'
PROMOTE_FULL = '{"status":{"promoteFull":true}}'
CLEAR_WITH_STEP = '{"status":{"pauseConditions":null, "currentStepIndex":%d}}'
UNPAUSE_AND_CLEAR_WITH_STEP = (
    '{"spec":{"paused":false},"status":{"pauseConditions":null, "currentStepIndex":%d}}'
)
UNPAUSE_AND_PROMOTE_FULL = '{"spec":{"paused":false},"status":{"promoteFull":true}}'
ABORT = '{"status":{"abort":true}}'
RETRY = '{"status":{"abort":false}}'
PAUSE = '{"spec":{"paused":true}}'

PAUSED_AT_STEP = [{"reason": "CanaryPauseStep", "startTime": "2026-01-01T00:00:00Z"}]
INCONCLUSIVE_PAUSE = [{"reason": "InconclusiveAnalysisRun",
                       "startTime": "2026-01-01T00:00:00Z"}]


def rollout(*, steps: int = 4, paused: bool = False, strategy: str = "canary",
            **status: Any) -> Obj:
    spec: Obj = {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "web", "image": "web:1"}]}},
    }
    if strategy == "canary":
        spec["strategy"] = {"canary": {"steps": [{"setWeight": 10 * (i + 1)} if i % 2 == 0
                                                 else {"pause": {}} for i in range(steps)]}}
    else:
        spec["strategy"] = {"blueGreen": {"activeService": "web"}}
    if paused:
        spec["paused"] = True
    return {"metadata": {"name": "web", "namespace": "default", "uid": "uid-1",
                         "generation": 1},
            "spec": spec, "status": status}


def parsed(json_text: str | None) -> Obj | None:
    return None if json_text is None else json.loads(json_text)


PROMOTE_CASES = [
    pytest.param(
        rollout(currentStepIndex=1, pauseConditions=PAUSED_AT_STEP, controllerPause=True),
        None, CLEAR_PAUSE_CONDITIONS, UNPAUSE_AND_CLEAR,
        id="a pause step is promoted by clearing its pause conditions only",
    ),
    pytest.param(
        rollout(paused=True, currentStepIndex=1, pauseConditions=PAUSED_AT_STEP),
        UNPAUSE, CLEAR_PAUSE_CONDITIONS, UNPAUSE_AND_CLEAR,
        id="a manually paused rollout at a pause step is unpaused and its conditions cleared",
    ),
    pytest.param(
        rollout(currentStepIndex=2),
        None, CLEAR_WITH_STEP % 3, UNPAUSE_AND_CLEAR_WITH_STEP % 3,
        id="a rollout between pauses steps on by one",
    ),
    pytest.param(
        rollout(),
        None, CLEAR_WITH_STEP % 1, UNPAUSE_AND_CLEAR_WITH_STEP % 1,
        id="a missing step index counts as step zero",
    ),
    pytest.param(
        rollout(currentStepIndex=4),
        None, CLEAR_WITH_STEP % 4, UNPAUSE_AND_CLEAR_WITH_STEP % 4,
        id="the step index never passes the number of steps",
    ),
    pytest.param(
        rollout(paused=True, currentStepIndex=2),
        UNPAUSE, CLEAR_WITH_STEP % 3, UNPAUSE_AND_CLEAR_WITH_STEP % 3,
        id="a manually paused rollout between pauses is unpaused and steps on",
    ),
    pytest.param(
        rollout(currentStepIndex=2, pauseConditions=INCONCLUSIVE_PAUSE, controllerPause=True,
                canary={"currentStepAnalysisRunStatus": {"name": "run",
                                                         "status": "Inconclusive"}}),
        None, CLEAR_PAUSE_AND_CONTROLLER_PAUSE % 3, UNPAUSE_AND_CLEAR,
        id="an inconclusive step analysis is promoted past its step",
    ),
    pytest.param(
        rollout(currentStepIndex=2, pauseConditions=INCONCLUSIVE_PAUSE,
                canary={"currentStepAnalysisRunStatus": {"name": "run",
                                                         "status": "Inconclusive"}}),
        None, CLEAR_PAUSE_CONDITIONS, UNPAUSE_AND_CLEAR,
        id="an inconclusive analysis without a controller pause only clears the conditions",
    ),
    pytest.param(
        rollout(steps=0, paused=True),
        UNPAUSE, None, None,
        id="a manually paused rollout without steps is only unpaused",
    ),
    pytest.param(
        rollout(steps=0, pauseConditions=PAUSED_AT_STEP),
        None, CLEAR_PAUSE_CONDITIONS, UNPAUSE_AND_CLEAR,
        id="pause conditions are cleared even without steps",
    ),
    pytest.param(
        rollout(strategy="blueGreen", pauseConditions=[{"reason": "BlueGreenPause"}]),
        None, CLEAR_PAUSE_CONDITIONS, UNPAUSE_AND_CLEAR,
        id="a paused blue-green rollout has its pause conditions cleared",
    ),
]


@pytest.mark.parametrize(("obj", "spec", "status", "unified"), PROMOTE_CASES)
def test_promote_sends_the_plugins_patches(
    obj: Obj, spec: str | None, status: str | None, unified: str | None
) -> None:
    assert promote_patch(obj) == OperatorPatch(
        spec=parsed(spec), status=parsed(status), unified=parsed(unified))


PROMOTE_FULL_CASES = [
    pytest.param(rollout(currentPodHash="new", stableRS="old"),
                 None, PROMOTE_FULL, UNPAUSE_AND_PROMOTE_FULL,
                 id="a rollout mid-update is fully promoted"),
    pytest.param(rollout(paused=True, currentPodHash="new", stableRS="old"),
                 UNPAUSE, PROMOTE_FULL, UNPAUSE_AND_PROMOTE_FULL,
                 id="a manually paused rollout mid-update is unpaused and fully promoted"),
    pytest.param(rollout(paused=True, currentPodHash="same", stableRS="same"),
                 UNPAUSE, None, None,
                 id="a manually paused promoted rollout is only unpaused"),
    pytest.param(rollout(currentPodHash="same", stableRS="same"),
                 None, None, None,
                 id="a fully promoted rollout needs nothing"),
    pytest.param(rollout(currentPodHash="first"),
                 None, PROMOTE_FULL, UNPAUSE_AND_PROMOTE_FULL,
                 id="a rollout without a stable yet is fully promoted"),
]


@pytest.mark.parametrize(("obj", "spec", "status", "unified"), PROMOTE_FULL_CASES)
def test_promote_full_sends_the_plugins_patches(
    obj: Obj, spec: str | None, status: str | None, unified: str | None
) -> None:
    assert promote_patch(obj, full=True) == OperatorPatch(
        spec=parsed(spec), status=parsed(status), unified=parsed(unified))


def test_promote_of_a_rollout_without_steps_says_there_is_no_step_to_skip() -> None:
    with pytest.raises(OperatorError) as caught:
        promote_patch(rollout(steps=0))
    assert str(caught.value) == "Cannot skip steps of a rollout without steps"


def test_promote_does_not_change_the_rollout_it_reads() -> None:
    obj = rollout(paused=True, currentStepIndex=1, pauseConditions=PAUSED_AT_STEP)
    before = copy.deepcopy(obj)
    promote_patch(obj)
    promote_patch(obj, full=True)
    assert obj == before


@pytest.mark.parametrize(
    ("patch", "spec", "status", "unified"),
    [
        pytest.param(abort_patch(), None, ABORT, ABORT, id="abort sets status.abort"),
        pytest.param(retry_patch(), None, RETRY, RETRY, id="retry clears status.abort"),
        pytest.param(pause_patch(), PAUSE, None, None, id="pause sets spec.paused"),
        pytest.param(resume_patch(), UNPAUSE, None, None, id="resume clears spec.paused"),
    ],
)
def test_fixed_actions_send_the_plugins_constants(
    patch: OperatorPatch, spec: str | None, status: str | None, unified: str | None
) -> None:
    assert patch == OperatorPatch(spec=parsed(spec), status=parsed(status),
                                  unified=parsed(unified))


def test_patches_handed_out_are_independent_copies() -> None:
    first = abort_patch()
    assert first.status is not None
    first.status["status"]["abort"] = False
    assert abort_patch().status == {"status": {"abort": True}}


@pytest.mark.parametrize(
    ("at", "stamp"),
    [
        pytest.param(datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC), "2026-03-04T05:06:07Z",
                     id="restart time is RFC 3339 in whole seconds"),
        pytest.param(datetime(2026, 3, 4, 7, 6, 7, tzinfo=timezone(timedelta(hours=2))),
                     "2026-03-04T05:06:07Z", id="restart time is written in UTC"),
    ],
)
def test_restart_sets_restart_at(at: datetime, stamp: str) -> None:
    assert restart_patch(at=at) == OperatorPatch(spec={"spec": {"restartAt": stamp}})


def test_restart_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        restart_patch(at=datetime(2026, 1, 1))


def with_containers(**fields: list[Obj]) -> Obj:
    obj = rollout()
    obj["spec"]["template"]["spec"] = dict(fields)
    obj["metadata"]["resourceVersion"] = "42"
    return obj


def test_set_image_changes_only_the_named_container() -> None:
    obj = with_containers(containers=[{"name": "web", "image": "web:1"},
                                      {"name": "proxy", "image": "proxy:1"}])
    edited = set_image(obj, container="web", image="web:2")
    assert edited["spec"]["template"]["spec"]["containers"] == [
        {"name": "web", "image": "web:2"}, {"name": "proxy", "image": "proxy:1"}]
    assert edited["metadata"]["resourceVersion"] == "42"  # the PUT is guarded by it
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1"


def test_set_image_star_changes_init_regular_and_ephemeral_containers() -> None:
    obj = with_containers(initContainers=[{"name": "init", "image": "init:1"}],
                          containers=[{"name": "web", "image": "web:1"}],
                          ephemeralContainers=[{"name": "debug", "image": "busybox"}])
    pod_spec = set_image(obj, container="*", image="all:2")["spec"]["template"]["spec"]
    images = [c["image"] for field in ("initContainers", "containers", "ephemeralContainers")
              for c in pod_spec[field]]
    assert images == ["all:2", "all:2", "all:2"]


def test_set_image_finds_init_containers_by_name() -> None:
    obj = with_containers(initContainers=[{"name": "migrate", "image": "m:1"}],
                          containers=[{"name": "web", "image": "web:1"}])
    pod_spec = set_image(obj, container="migrate", image="m:2")["spec"]["template"]["spec"]
    assert pod_spec["initContainers"][0]["image"] == "m:2"
    assert pod_spec["containers"][0]["image"] == "web:1"


def test_set_image_of_an_unknown_container_names_it() -> None:
    with pytest.raises(OperatorError) as caught:
        set_image(rollout(), container="nope", image="x")
    assert str(caught.value) == 'unable to find container named "nope"'


# --- undo --------------------------------------------------------------------------------------

def replica_set(revision: str | None, image: str, *, uid: str = "uid-1",
                controller: bool = True) -> Obj:
    annotations = {} if revision is None else {"rollout.argoproj.io/revision": revision}
    return {
        "metadata": {"name": f"web-{image.replace(':', '-')}", "annotations": annotations,
                     "ownerReferences": [{"kind": "Rollout", "name": "web", "uid": uid,
                                          "controller": controller}]},
        "spec": {"template": {
            "metadata": {"labels": {"app": "web", "rollouts-pod-template-hash": "h" + image}},
            "spec": {"containers": [{"name": "web", "image": image}]}}},
    }


def template(image: str) -> Obj:
    return {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": image}]}}


def current(image: str) -> Obj:
    obj = rollout()
    obj["spec"]["template"] = template(image)
    return obj


HISTORY = [replica_set("1", "web:1"), replica_set("3", "web:3"), replica_set("2", "web:2")]


def test_undo_restores_the_revision_before_the_newest_without_its_hash_label() -> None:
    undo = undo_patch(current("web:3"), HISTORY)
    assert undo.revision == 2
    assert undo.json_patch == [{"op": "replace", "path": "/spec/template",
                                "value": template("web:2")}]


def test_undo_to_a_revision_restores_that_revision() -> None:
    undo = undo_patch(current("web:3"), HISTORY, to_revision=1)
    assert undo.revision == 1
    assert undo.json_patch == [{"op": "replace", "path": "/spec/template",
                                "value": template("web:1")}]


def test_undo_to_the_current_template_writes_nothing() -> None:
    undo = undo_patch(current("web:1"), HISTORY, to_revision=1)
    assert undo.json_patch is None


def test_undo_to_a_missing_revision_says_so() -> None:
    with pytest.raises(OperatorError) as caught:
        undo_patch(current("web:3"), HISTORY, to_revision=7)
    assert str(caught.value) == "unable to find specified revision 7 in history"


def test_undo_without_history_names_the_rollout() -> None:
    with pytest.raises(OperatorError) as caught:
        undo_patch(current("web:1"), [replica_set("1", "web:1")])
    assert str(caught.value) == 'no revision found for rollout "web"'


def test_undo_ignores_replica_sets_the_rollout_does_not_control() -> None:
    history = [replica_set("1", "web:1"), replica_set("3", "web:3"),
               replica_set("2", "other:2", uid="uid-other"),
               replica_set("2", "adopted:2", controller=False)]
    undo = undo_patch(current("web:3"), history)
    assert undo.revision == 1


def test_undo_skips_unparsable_revisions_and_counts_missing_ones_as_zero() -> None:
    history = [replica_set("x", "bad"), replica_set(None, "web:0"), replica_set("3", "web:3")]
    undo = undo_patch(current("web:3"), history)
    assert undo.revision == 0
    assert undo.template == template("web:0")


# --- reading ---------------------------------------------------------------------------------

PHASE_CASES = [
    pytest.param(rollout(observedGeneration="1", phase="Paused", message="CanaryPauseStep",
                         pauseConditions=PAUSED_AT_STEP),
                 ("Paused", "CanaryPauseStep"), id="the controller's phase is shown"),
    pytest.param(rollout(observedGeneration="0", phase="Healthy"),
                 ("Progressing", "waiting for rollout spec update to be observed"),
                 id="an unobserved spec change is progressing"),
    pytest.param(rollout(observedGeneration="1", phase="Paused", controllerPause=True),
                 ("Progressing", "waiting for rollout to unpause"),
                 id="a promoted pause is progressing until the controller sees it"),
    pytest.param(rollout(observedGeneration="abc123", phase="Healthy"), ("Healthy", ""),
                 id="a hash as observed generation counts as observed"),
    pytest.param(rollout(observedGeneration="1", phase="Degraded",
                         message="RolloutAborted: Rollout aborted update to revision 2"),
                 ("Degraded", "RolloutAborted: Rollout aborted update to revision 2"),
                 id="an aborted rollout is degraded"),
    pytest.param(rollout(), ("Progressing", "more replicas need to be updated"),
                 id="a rollout without a status yet is computed as progressing"),
]


@pytest.mark.parametrize(("obj", "expected"), PHASE_CASES)
def test_rollout_phase_reads_like_the_plugin(obj: Obj, expected: tuple[str, str]) -> None:
    assert rollout_phase(obj) == expected


def test_rollout_phase_of_an_invalid_spec_is_degraded() -> None:
    obj = rollout()
    del obj["spec"]["selector"]
    phase, message = rollout_phase(obj)
    assert phase == "Degraded"
    assert message.startswith("InvalidSpec: ")


@pytest.mark.parametrize(
    ("obj", "weight"),
    [
        pytest.param(rollout(currentStepIndex=0), 10, id="a setWeight step sets its weight"),
        pytest.param(rollout(currentStepIndex=1), 10,
                     id="a pause keeps the weight of the step before"),
        pytest.param(rollout(currentStepIndex=2), 30, id="later steps set later weights"),
        pytest.param(rollout(currentStepIndex=4), 100, id="after the last step it is 100"),
        pytest.param(rollout(steps=0), 100, id="without steps it is 100"),
        pytest.param(rollout(currentStepIndex=2, abort=True), 0, id="aborted it is 0"),
    ],
)
def test_current_set_weight_follows_the_steps(obj: Obj, weight: int) -> None:
    assert current_set_weight(obj) == weight


def test_step_progress_counts_steps_like_the_plugin() -> None:
    assert step_progress(rollout(currentStepIndex=1)) == "1/4"
    assert step_progress(rollout()) is None
    assert step_progress(rollout(steps=0, currentStepIndex=0)) is None
