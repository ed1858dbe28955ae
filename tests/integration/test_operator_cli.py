"""``shiftctl`` against an API server: the exact effect of each command on the stored Rollout.

Commands run in-process through ``main([...])`` (in a worker thread, since ``main`` runs its
own event loop) against the emulator of ``test_cluster`` (or ``$SHIFTD_TEST_KUBECONFIG``).
No controller runs: what is checked is what the command wrote, its output and exit code.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
import yaml

from shiftd.cli.ctl import main
from shiftd.cli.ctl.render import render_rollout
from shiftd.cli.ctl.view import read_view, watch_views
from shiftd.kube.resources import POD, REPLICA_SET, ROLLOUT, VIRTUAL_SERVICE
from shiftd.runtime.clock import ManualClock
from shiftd.views import RolloutObjects
from tests.golden import assert_golden
from tests.integration.daemon_support import running_daemon
from tests.integration.harness import Cluster, test_cluster

pytestmark = pytest.mark.integration

Obj = dict[str, Any]
NAME = "istio-rollout"
PAUSED_AT_STEP = [{"reason": "CanaryPauseStep", "startTime": "2026-01-01T00:00:00Z"}]


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    # No task group lives in here: the emulator and client are plain async resources, and
    # the invariant monitor (a task group) is off: these tests run no daemon.
    async with test_cluster(monitor=False) as opened:
        await opened.apply_example("asm-host-split")
        yield opened


async def shiftctl(cluster: Cluster, capsys: pytest.CaptureFixture[str], *args: str,
                   namespace: str | None = None) -> Result:
    argv = ["--kubeconfig", str(cluster.kubeconfig_path),
            "-n", namespace or cluster.namespace, *args]
    capsys.readouterr()
    code = await anyio.to_thread.run_sync(main, argv)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


async def status_of(cluster: Cluster) -> Obj:
    return dict((await cluster.rollout()).get("status") or {})


# --- promote -----------------------------------------------------------------------------------

async def test_promote_at_a_pause_step_clears_only_the_pause_conditions(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.patch_status({"status": {"currentStepIndex": 1, "controllerPause": True,
                                           "pauseConditions": PAUSED_AT_STEP}})
    result = await shiftctl(cluster, capsys, "promote", NAME)
    assert result == Result(0, f"rollout '{NAME}' promoted\n", "")
    status = await status_of(cluster)
    assert "pauseConditions" not in status
    assert status["currentStepIndex"] == 1
    assert status["controllerPause"] is True


async def test_promote_between_pauses_steps_on_by_one(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.patch_status({"status": {"currentStepIndex": 2}})
    assert (await shiftctl(cluster, capsys, "promote", NAME)).code == 0
    assert (await status_of(cluster))["currentStepIndex"] == 3


async def test_promote_unpauses_a_manually_paused_rollout(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await shiftctl(cluster, capsys, "pause", NAME) == Result(
        0, f"rollout '{NAME}' paused\n", "")
    assert (await cluster.rollout())["spec"]["paused"] is True
    await cluster.patch_status({"status": {"currentStepIndex": 1,
                                           "pauseConditions": PAUSED_AT_STEP}})
    assert (await shiftctl(cluster, capsys, "promote", NAME)).code == 0
    rollout = await cluster.rollout()
    assert rollout["spec"]["paused"] is False
    assert "pauseConditions" not in rollout["status"]


async def test_promote_full_sets_promote_full_mid_update(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.patch_status({"status": {"currentPodHash": "new", "stableRS": "old",
                                           "currentStepIndex": 1}})
    result = await shiftctl(cluster, capsys, "promote", NAME, "--full")
    assert result == Result(0, f"rollout '{NAME}' fully promoted\n", "")
    status = await status_of(cluster)
    assert status["promoteFull"] is True
    assert status["currentStepIndex"] == 1


async def test_promote_of_a_rollout_without_steps_fails_with_the_plugins_message(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    rollout = await cluster.rollout()
    rollout["spec"]["strategy"]["canary"]["steps"] = []
    await cluster.client.replace(ROLLOUT, cluster.namespace, NAME, rollout)
    result = await shiftctl(cluster, capsys, "promote", NAME)
    assert result == Result(1, "", "error: Cannot skip steps of a rollout without steps\n")


# --- abort, retry, pause, restart --------------------------------------------------------------

async def test_abort_then_retry_flip_status_abort(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await shiftctl(cluster, capsys, "abort", NAME) == Result(
        0, f"rollout '{NAME}' aborted\n", "")
    assert (await status_of(cluster))["abort"] is True
    assert await shiftctl(cluster, capsys, "retry", "rollout", NAME) == Result(
        0, f"rollout '{NAME}' retried\n", "")
    assert (await status_of(cluster))["abort"] is False


async def test_abort_writes_through_the_status_subresource(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    if cluster.api is None:
        pytest.skip("reads the emulator's request log")
    await shiftctl(cluster, capsys, "abort", NAME)
    patches = [(r.path, r.content_type, r.status) for r in cluster.api.request_log
               if r.method == "PATCH"]
    assert patches == [(f"/apis/argoproj.io/v1alpha1/namespaces/{cluster.namespace}"
                        f"/rollouts/{NAME}/status", "application/merge-patch+json", 200)]


async def test_restart_sets_restart_at_to_now_in_rfc3339(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    result = await shiftctl(cluster, capsys, "restart", NAME)
    assert result == Result(0, f"rollout '{NAME}' restarts in 0s\n", "")
    stamp = (await cluster.rollout())["spec"]["restartAt"]
    assert stamp.endswith("Z")
    restart_at = datetime.fromisoformat(stamp)
    assert before <= restart_at <= datetime.now(UTC)


async def test_restart_in_a_while_sets_a_later_time(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    result = await shiftctl(cluster, capsys, "restart", NAME, "--in", "1h")
    assert result == Result(0, f"rollout '{NAME}' restarts in 1h\n", "")
    restart_at = datetime.fromisoformat((await cluster.rollout())["spec"]["restartAt"])
    assert restart_at >= before + timedelta(hours=1)


async def test_pause_takes_several_rollouts_and_stops_at_the_first_missing_one(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    result = await shiftctl(cluster, capsys, "pause", NAME, "nope")
    assert result.code == 1
    assert result.out == f"rollout '{NAME}' paused\n"
    assert result.err == (
        f'error: rollout "nope" not found in namespace "{cluster.namespace}"\n')


# --- set image, undo ---------------------------------------------------------------------------

async def test_set_image_changes_the_template_and_the_generation(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    generation = (await cluster.rollout())["metadata"]["generation"]
    result = await shiftctl(cluster, capsys, "set", "image", NAME,
                            "istio-rollout=argoproj/rollouts-demo:yellow")
    assert result == Result(0, f'rollout "{NAME}" image updated\n', "")
    rollout = await cluster.rollout()
    assert rollout["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "argoproj/rollouts-demo:yellow")
    assert rollout["metadata"]["generation"] == generation + 1


async def test_set_image_of_an_unknown_container_fails_and_changes_nothing(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await cluster.rollout()
    result = await shiftctl(cluster, capsys, "set", "image", NAME, "nope=x:1")
    assert result == Result(1, "", 'error: unable to find container named "nope"\n')
    assert (await cluster.rollout())["metadata"]["resourceVersion"] == (
        before["metadata"]["resourceVersion"])


async def revision(cluster: Cluster, rollout: Obj, number: int, image: str) -> Obj:
    """A ReplicaSet the Rollout controls, at ``number`` with ``image``."""
    template = {"metadata": {"labels": {"app": "istio-rollout",
                                        "rollouts-pod-template-hash": f"h{number}"},
                             "annotations": {"sidecar.istio.io/inject": "true"}},
                "spec": {"containers": [{"name": "istio-rollout", "image": image}]}}
    body = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"{NAME}-h{number}",
                     "labels": {"app": "istio-rollout", "rollouts-pod-template-hash": f"h{number}"},
                     "annotations": {"rollout.argoproj.io/revision": str(number)},
                     "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1",
                                          "kind": "Rollout", "name": NAME,
                                          "uid": rollout["metadata"]["uid"],
                                          "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"replicas": 1,
                 "selector": {"matchLabels": {"app": "istio-rollout",
                                              "rollouts-pod-template-hash": f"h{number}"}},
                 "template": template},
    }
    return await cluster.client.create(REPLICA_SET, cluster.namespace, body)


async def test_undo_restores_the_previous_revisions_template(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    rollout = await cluster.rollout()
    old = await revision(cluster, rollout, 1, "argoproj/rollouts-demo:green")
    await revision(cluster, rollout, 2, "argoproj/rollouts-demo:blue")
    result = await shiftctl(cluster, capsys, "undo", NAME)
    assert result == Result(0, f"rollout '{NAME}' undo\n", "")
    template = (await cluster.rollout())["spec"]["template"]
    expected = old["spec"]["template"]
    del expected["metadata"]["labels"]["rollouts-pod-template-hash"]
    # The ReplicaSet's `creationTimestamp: null` is a null the Rollout CRD's schema does not
    # allow, so the API server prunes it from the custom resource (as a real server does).
    assert expected["metadata"].pop("creationTimestamp", "absent") is None
    assert template == expected

    again = await shiftctl(cluster, capsys, "undo", NAME, "--to-revision", "1")
    assert again == Result(
        0, "skipped rollback (current template already matches revision 1)\n", "")


async def test_undo_to_a_revision_not_in_history_fails(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    result = await shiftctl(cluster, capsys, "undo", NAME, "--to-revision", "9")
    assert result == Result(1, "", "error: unable to find specified revision 9 in history\n")


# --- errors and usage --------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["promote", "nope"], ["promote", "nope", "--full"], ["abort", "nope"],
    ["retry", "rollout", "nope"], ["pause", "nope"], ["restart", "nope"], ["undo", "nope"],
    ["get", "rollout", "nope"], ["status", "nope"], ["set", "image", "nope", "*=x:1"],
], ids=" ".join)
async def test_a_missing_rollout_is_named_with_its_namespace(
    cluster: Cluster, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    result = await shiftctl(cluster, capsys, *argv)
    assert result == Result(
        1, "", f'error: rollout "nope" not found in namespace "{cluster.namespace}"\n')


async def test_the_namespace_defaults_to_the_kubeconfig_contexts(
    cluster: Cluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = yaml.safe_load(cluster.kubeconfig_path.read_text())
    for entry in config["contexts"]:
        entry["context"]["namespace"] = cluster.namespace
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    capsys.readouterr()
    code = await anyio.to_thread.run_sync(
        main, ["--kubeconfig", str(kubeconfig), "pause", NAME])
    assert (code, capsys.readouterr().out) == (0, f"rollout '{NAME}' paused\n")

    del config["contexts"][0]["context"]["namespace"]
    kubeconfig.write_text(yaml.safe_dump(config))
    code = await anyio.to_thread.run_sync(
        main, ["--kubeconfig", str(kubeconfig), "pause", NAME])
    assert (code, capsys.readouterr().err) == (
        1, f'error: rollout "{NAME}" not found in namespace "default"\n')


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param([], id="no command"),
        pytest.param(["promote"], id="no rollout name"),
        pytest.param(["set", "image", NAME, "no-equals-sign"], id="an image without a container"),
        pytest.param(["retry", NAME], id="retry without the rollout keyword"),
        pytest.param(["status", NAME, "--timeout", "soon"], id="a timeout that is no duration"),
        pytest.param(["undo", NAME, "--to-revision", "-1"], id="a negative revision"),
    ],
)
def test_bad_usage_exits_2_with_one_line_on_stderr(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "error:" in captured.err


def test_an_unreadable_kubeconfig_fails_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nothing-here"
    assert main(["--kubeconfig", str(missing), "pause", NAME]) == 1
    assert capsys.readouterr().err == f"error: kubeconfig {missing} not found\n"


# --- status ------------------------------------------------------------------------------------

async def test_status_of_a_healthy_rollout_exits_0(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.patch_status({"status": {"observedGeneration": "1", "phase": "Healthy"}})
    assert await shiftctl(cluster, capsys, "status", NAME) == Result(0, "Healthy\n", "")


async def test_status_of_a_degraded_rollout_exits_1_with_its_message(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    message = "RolloutAborted: Rollout aborted update to revision 2"
    await cluster.patch_status({"status": {"observedGeneration": "1", "phase": "Degraded",
                                           "message": message, "abort": True}})
    result = await shiftctl(cluster, capsys, "status", NAME)
    assert result == Result(
        1, f"Degraded - {message}\n",
        f"error: The rollout is in a degraded state with message: {message}\n")


async def test_status_of_an_aborted_rollout_exits_1_before_the_controller_reports_it(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.patch_status({"status": {"observedGeneration": "1", "phase": "Paused",
                                           "message": "CanaryPauseStep"}})
    await cluster.abort(NAME)
    result = await shiftctl(cluster, capsys, "status", NAME)
    assert result == Result(
        1, "Paused - RolloutAborted: the rollout was aborted\n",
        "error: The rollout is in a degraded state with message: "
        "RolloutAborted: the rollout was aborted\n")


async def test_status_times_out_with_exit_2(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.patch_status({"status": {"observedGeneration": "1", "phase": "Paused",
                                           "message": "CanaryPauseStep",
                                           "pauseConditions": PAUSED_AT_STEP}})
    result = await shiftctl(cluster, capsys, "status", NAME, "--timeout", "300ms")
    assert result == Result(2, "Paused - CanaryPauseStep\n",
                            "Rollout status watch exceeded timeout\n")


async def test_status_without_watch_prints_once(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.patch_status({"status": {"observedGeneration": "1", "phase": "Paused",
                                           "message": "CanaryPauseStep",
                                           "pauseConditions": PAUSED_AT_STEP}})
    result = await shiftctl(cluster, capsys, "status", NAME, "--no-watch")
    assert result == Result(0, "Paused - CanaryPauseStep\n", "")


async def test_status_follows_the_watch_until_healthy(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.patch_status({"status": {"observedGeneration": "1", "phase": "Progressing",
                                           "message": "more replicas need to be updated"}})
    printed: list[str] = []
    code: list[int] = []
    argv = ["--kubeconfig", str(cluster.kubeconfig_path), "-n", cluster.namespace,
            "status", NAME, "--timeout", "20s"]
    capsys.readouterr()
    async with anyio.create_task_group() as tg:
        async def run() -> None:
            code.append(await anyio.to_thread.run_sync(functools.partial(main, argv)))
        tg.start_soon(run)

        def first_line_printed() -> bool:
            printed.append(capsys.readouterr().out)
            return "Progressing" in "".join(printed)

        await cluster.wait_for(first_line_printed, what="the first status line")
        await cluster.patch_status({"status": {"message": "updated replicas are still "
                                                          "becoming available"}})
        await cluster.patch_status({"status": {"phase": "Healthy", "message": None}})
    printed.append(capsys.readouterr().out)
    assert code == [0]
    assert "".join(printed) == (
        "Progressing - more replicas need to be updated\n"
        "Progressing - updated replicas are still becoming available\n"
        "Healthy\n")
    if cluster.api is not None:
        rollout_path = f"/apis/argoproj.io/v1alpha1/namespaces/{cluster.namespace}/rollouts"
        reads = [r for r in cluster.api.request_log if r.method == "GET"
                 and r.path.startswith(rollout_path) and not r.watch]
        # One read; both later changes came through the watch (the emulator does not log a
        # watch the client closed, so it cannot be counted here).
        assert len(reads) == 1


# --- get rollout -------------------------------------------------------------------------------

async def test_get_rollout_shows_status_steps_weights_images_and_replicas(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    rollout = await cluster.rollout()
    await revision(cluster, rollout, 1, "argoproj/rollouts-demo:blue")
    await revision(cluster, rollout, 2, "argoproj/rollouts-demo:yellow")
    await cluster.patch_status({"status": {
        "observedGeneration": "1", "phase": "Paused", "message": "CanaryPauseStep",
        "pauseConditions": PAUSED_AT_STEP, "currentStepIndex": 1,
        "stableRS": "h1", "currentPodHash": "h2",
        "replicas": 2, "updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 2,
    }})
    vs = await cluster.vs()
    route = vs["spec"]["http"][0]["route"]
    route[0]["weight"], route[1]["weight"] = 90, 10
    await cluster.client.replace(VIRTUAL_SERVICE, cluster.namespace, vs["metadata"]["name"], vs)

    result = await shiftctl(cluster, capsys, "get", "rollout", NAME)
    assert result.code == 0, result.err
    summary, _, tree = result.out.partition("\n\n")
    assert summary + "\n" == (
        f"Name:            {NAME}\n"
        f"Namespace:       {cluster.namespace}\n"
        "Status:          ॥ Paused\n"
        "Message:         CanaryPauseStep\n"
        "Strategy:        Canary\n"
        "  Step:          1/18\n"
        "  SetWeight:     10\n"
        "  ActualWeight:  10\n"
        "Images:          argoproj/rollouts-demo:blue (stable)\n"
        "                 argoproj/rollouts-demo:yellow (canary)\n"
        "Replicas:\n"
        "  Desired:       1\n"
        "  Current:       2\n"
        "  Updated:       1\n"
        "  Ready:         2\n"
        "  Available:     2\n"
    )
    icons_and_names = [re.search(r"([⟳#⧉□]) (\S+)", line).groups()  # type: ignore[union-attr]
                       for line in tree.splitlines()[1:]]
    assert icons_and_names == [("⟳", NAME), ("#", "revision:2"), ("⧉", f"{NAME}-h2"),
                               ("#", "revision:1"), ("⧉", f"{NAME}-h1")]


async def test_get_rollout_says_when_the_virtual_service_is_missing(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.client.delete(VIRTUAL_SERVICE, cluster.namespace, "istio-rollout-vsvc")
    result = await shiftctl(cluster, capsys, "get", "rollout", NAME)
    assert result.code == 0
    assert "  ActualWeight:  - (VirtualService 'istio-rollout-vsvc' not found)\n" in result.out


# --- the plugin's fallbacks and retries --------------------------------------------------------

def emulator(cluster: Cluster) -> Any:
    if cluster.api is None:
        pytest.skip("injects failures into the emulator")
    return cluster.api


async def test_without_a_status_subresource_the_unified_patch_goes_to_the_rollout(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    api = emulator(cluster)
    await cluster.patch_status({"status": {"currentStepIndex": 2}})
    api.fail_next("PATCH", r"/rollouts/istio-rollout/status$", 404)
    start = len(api.request_log)
    assert (await shiftctl(cluster, capsys, "promote", NAME)).code == 0
    patches = [(r.path.rsplit("/", 1)[-1], r.status) for r in api.request_log[start:]
               if r.method == "PATCH"]
    assert patches == [("status", 404), (NAME, 200)]


async def test_set_image_retries_a_lost_race(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    api = emulator(cluster)
    api.fail_next("PUT", r"/rollouts/istio-rollout$", 409)
    result = await shiftctl(cluster, capsys, "set", "image", NAME, "*=web:2")
    assert result == Result(0, f'rollout "{NAME}" image updated\n', "")
    assert [r.status for r in api.request_log if r.method == "PUT"] == [409, 200]
    rollout = await cluster.rollout()
    assert rollout["spec"]["template"]["spec"]["containers"][0]["image"] == "web:2"


async def test_promote_full_of_a_promoted_rollout_writes_nothing(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.patch_status({"status": {"currentPodHash": "same", "stableRS": "same"}})
    before = (await cluster.rollout())["metadata"]["resourceVersion"]
    result = await shiftctl(cluster, capsys, "promote", NAME, "--full")
    assert result == Result(0, f"rollout '{NAME}' fully promoted\n", "")
    assert (await cluster.rollout())["metadata"]["resourceVersion"] == before


async def test_status_fails_when_the_rollout_is_deleted_while_watched(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.patch_status({"status": {"observedGeneration": "1", "phase": "Paused",
                                           "message": "CanaryPauseStep",
                                           "pauseConditions": PAUSED_AT_STEP}})
    argv = ["--kubeconfig", str(cluster.kubeconfig_path), "-n", cluster.namespace,
            "status", NAME, "--timeout", "20s"]
    code: list[int] = []
    printed: list[str] = []
    capsys.readouterr()
    async with anyio.create_task_group() as tg:
        async def run() -> None:
            code.append(await anyio.to_thread.run_sync(functools.partial(main, argv)))
        tg.start_soon(run)

        def first_line_printed() -> bool:
            printed.append(capsys.readouterr().out)
            return "Paused" in "".join(printed)

        await cluster.wait_for(first_line_printed, what="the first status line")
        await cluster.client.delete(ROLLOUT, cluster.namespace, NAME)
    assert code == [1]
    assert capsys.readouterr().err == f'error: rollout "{NAME}" was deleted\n'


# --- get rollout: golden views of a real daemon's work, and --watch ------------------------------

GOLDEN_NOW = datetime(2026, 1, 1, 0, 0, 52, tzinfo=UTC)


def normalised(view: RolloutObjects) -> RolloutObjects:
    """The view with what varies between runs made fixed: every object created at 00:00:00
    (so ages read 52s), the namespace ``default``, pod names ``<replicaset>-xxxxx``."""
    def fixed(obj: Obj) -> Obj:
        copied = copy.deepcopy(obj)
        copied["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
        copied["metadata"]["namespace"] = "default"
        return copied

    by_uid = {rs["metadata"]["uid"]: rs["metadata"]["name"] for rs in view.replica_sets}
    pods = []
    counts: dict[str, int] = {}
    for pod in sorted(view.pods, key=lambda p: str(p["metadata"]["name"])):
        owner = by_uid[pod["metadata"]["ownerReferences"][0]["uid"]]
        counts[owner] = counts.get(owner, 0) + 1
        renamed = fixed(pod)
        renamed["metadata"]["name"] = f"{owner}-xxxx{counts[owner]}"
        pods.append(renamed)
    return RolloutObjects(rollout=fixed(view.rollout),
                       replica_sets=[fixed(rs) for rs in view.replica_sets], pods=pods,
                       analysis_runs=[fixed(run) for run in view.analysis_runs],
                       actual_weight=view.actual_weight)


async def rendered(cluster: Cluster) -> str:
    view = await read_view(cluster.client, namespace=cluster.namespace, name=NAME)
    return render_rollout(normalised(view), now=GOLDEN_NOW)


async def test_get_rollout_of_seed_000_matches_the_golden_views_healthy_and_paused() -> None:
    clock = ManualClock()
    async with test_cluster() as cluster, cluster.kubelet(create_pods=True), \
            running_daemon(cluster, clock=clock):
        await cluster.apply_example("asm-host-split")

        async def phase(wanted: str, step: int) -> bool:
            status = (await cluster.rollout()).get("status") or {}
            pods = [p for p in (await cluster.client.list(POD, cluster.namespace))[0]
                    if (p.get("status") or {}).get("phase") == "Running"]
            return (status.get("phase"), status.get("currentStepIndex")) == (wanted, step) \
                and len(pods) == int(status.get("replicas") or 0)

        await cluster.wait_for(lambda: phase("Healthy", 18), what="Healthy")
        assert_golden("get-000-healthy.txt", await rendered(cluster))

        await cluster.set_image(NAME, "argoproj/rollouts-demo:yellow")
        await cluster.wait_for(lambda: phase("Paused", 1), what="paused at step 1")
        assert_golden("get-000-paused-step-1.txt", await rendered(cluster))


async def test_get_rollout_watch_redraws_on_each_change_and_ends_on_cancellation(
    cluster: Cluster
) -> None:
    await cluster.patch_status({"status": {"observedGeneration": "1", "phase": "Progressing",
                                           "message": "more replicas need to be updated"}})
    views: list[RolloutObjects] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(watch_views, cluster.client,
                                        namespace=cluster.namespace, name=NAME,
                                        on_view=views.append))
        await cluster.wait_for(lambda: len(views) >= 1, what="the first view")
        await cluster.patch_status({"status": {"phase": "Paused",
                                               "message": "CanaryPauseStep"}})
        await cluster.wait_for(
            lambda: views[-1].rollout["status"]["phase"] == "Paused", what="a redraw")
        tg.cancel_scope.cancel()
    phases = [view.rollout["status"]["phase"] for view in views]
    assert phases[0] == "Progressing" and phases[-1] == "Paused"
    if cluster.api is not None:
        rollout_path = f"/apis/argoproj.io/v1alpha1/namespaces/{cluster.namespace}/rollouts"
        gets = [r for r in cluster.api.request_log if r.method == "GET"
                and r.path.startswith(rollout_path) and not r.watch]
        assert len(gets) <= 2  # one read and the informer's list: the redraw came by watch


async def test_get_rollout_watch_prints_a_frame_per_change_and_exits_0_at_its_timeout(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.patch_status({"status": {"observedGeneration": "1", "phase": "Progressing",
                                           "message": "more replicas need to be updated"}})
    argv = ["--kubeconfig", str(cluster.kubeconfig_path), "-n", cluster.namespace,
            "get", "rollout", NAME, "--watch", "--timeout-seconds", "3"]
    code: list[int] = []
    printed: list[str] = []
    capsys.readouterr()
    async with anyio.create_task_group() as tg:
        async def run() -> None:
            code.append(await anyio.to_thread.run_sync(functools.partial(main, argv)))
        tg.start_soon(run)

        def frame_with(text: str) -> bool:
            printed.append(capsys.readouterr().out)
            return text in "".join(printed)

        await cluster.wait_for(lambda: frame_with("◌ Progressing"), what="the first frame")
        await cluster.patch_status({"status": {"phase": "Paused",
                                               "message": "CanaryPauseStep"}})
        await cluster.wait_for(lambda: frame_with("॥ Paused"), what="the redrawn frame")
    printed.append(capsys.readouterr().out)
    assert code == [0]
    assert "".join(printed).count("Name:            istio-rollout") >= 2


# --- list rollouts, machine output ---------------------------------------------------------------

async def test_list_rollouts_shows_the_namespaces_rollouts_and_all_of_them_with_a(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.patch_status({"status": {"observedGeneration": "1", "phase": "Paused",
                                           "message": "CanaryPauseStep", "currentStepIndex": 1,
                                           "replicas": 2, "readyReplicas": 2,
                                           "updatedReplicas": 1, "availableReplicas": 2}})
    result = await shiftctl(cluster, capsys, "list", "rollouts")
    assert result.code == 0
    assert result.out.splitlines() == [
        "NAME           STRATEGY  STATUS  STEP  SET-WEIGHT  READY  DESIRED  UP-TO-DATE  "
        "AVAILABLE",
        "istio-rollout  Canary    Paused  1/18  10          2/2    1        1           2",
    ]
    everywhere = await shiftctl(cluster, capsys, "list", "rollouts", "-A")
    # a real server may hold other namespaces' Rollouts too: this namespace's row is among them
    header, *rows = everywhere.out.splitlines()
    assert header.startswith("NAMESPACE")
    # (whose names may be longer than this one's, widening the column)
    assert [cluster.namespace, "istio-rollout"] in [row.split()[:2] for row in rows]
    assert all(row.index("istio-rollout") == header.index(" NAME ") + 1 for row in rows
               if row.startswith(f"{cluster.namespace} "))
    empty = await shiftctl(cluster, capsys, "list", "rollouts", namespace="nothing-here")
    assert empty == Result(0, "", 'No resources found in namespace "nothing-here".\n')


async def test_get_rollout_as_json_carries_the_objects_it_draws(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    result = await shiftctl(cluster, capsys, "get", "rollout", NAME, "-o", "json")
    assert result.code == 0
    document = json.loads(result.out)
    assert document["rollout"]["metadata"]["name"] == NAME
    assert set(document) == {"rollout", "replicaSets", "pods", "analysisRuns", "actualWeight"}
