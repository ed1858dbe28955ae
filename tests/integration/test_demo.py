"""``shiftd demo`` end to end, in-process: seed 000 through the real daemon on the emulator.

The demo is itself a checked scenario; these tests make sure it passes when shiftd behaves,
and that it really fails (exit 1, a ✘ naming the difference) when a state cannot be reached
or is reached sooner than the Rollout's spec allows.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from shiftd.cli.daemon import main
from shiftd.cli.demo import SCENARIO, crd_documents, run_demo, seed_documents
from shiftd.kube.client import KubeClient
from shiftd.kube.resources import (
    ANALYSIS_RUN,
    ANALYSIS_TEMPLATE,
    CLUSTER_ANALYSIS_TEMPLATE,
    DESTINATION_RULE,
    ROLLOUT,
    VIRTUAL_SERVICE,
)
from shiftd.sim import ApiEmulator
from shiftd.sim.kinds import crd_resource_type

pytestmark = pytest.mark.integration

WATCHED_CUSTOM_KINDS = (ROLLOUT, ANALYSIS_TEMPLATE, CLUSTER_ANALYSIS_TEMPLATE, ANALYSIS_RUN,
                        VIRTUAL_SERVICE, DESTINATION_RULE)

# Fast enough that the 160 s of timed pauses and two 30 s delays take about 2 s.
SPEED = 100.0


async def test_the_demo_reaches_every_state_of_seed_000_with_the_plugins_writes() -> None:
    out = io.StringIO()

    code = await run_demo(SPEED, True, out=out)

    text = out.getvalue()
    assert code == 0, text
    for stage in SCENARIO:
        assert stage.title in text
    assert text.count("✔") == len(SCENARIO)
    assert "✘" not in text
    assert "every state matched" in text
    # exactly what `kubectl argo rollouts` sends
    assert "PUT rollouts/istio-rollout (spec.template: " \
           "istio-rollout=argoproj/rollouts-demo:yellow)" in text
    assert 'PATCH rollouts/istio-rollout/status {"status":{"pauseConditions":null}}' in text
    assert 'PATCH rollouts/istio-rollout/status {"status":{"abort":true}}' in text


async def test_the_demo_exits_1_when_an_expected_state_is_never_reached() -> None:
    first = SCENARIO[0]
    impossible = replace(first, expect=replace(first.expect, phase="Degraded"))
    out = io.StringIO()

    code = await run_demo(SPEED, True, scenario=[impossible, *SCENARIO[1:]], out=out, slack=1.0)

    text = out.getvalue()
    assert code == 1
    assert "✘ not reached within 1.0s" in text
    assert "✘ phase: want Degraded, saw Healthy" in text
    assert SCENARIO[1].title not in text  # the demo stops at the first state it cannot reach
    assert "a state was not reached" in text


async def test_the_demo_exits_1_when_a_state_comes_sooner_than_the_spec_allows() -> None:
    # The image update reaches its first pause at once; claim it should take a minute.
    too_soon = replace(SCENARIO[1], waits=60)
    out = io.StringIO()

    code = await run_demo(SPEED, True, scenario=[SCENARIO[0], too_soon], out=out, slack=2.0)

    text = out.getvalue()
    assert code == 1
    assert "the spec asks for 60s" in text


def test_the_packaged_seed_holds_the_objects_the_scenario_names() -> None:
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in seed_documents()}

    assert kinds == {
        ("Service", "istio-rollout-stable"),
        ("Service", "istio-rollout-canary"),
        ("VirtualService", "istio-rollout-vsvc"),
        ("Rollout", "istio-rollout"),
    }


def test_the_packaged_crds_declare_every_custom_kind_the_daemon_watches() -> None:
    declared = {(crd_resource_type(doc).group, crd_resource_type(doc).plural)
                for doc in crd_documents()}

    assert declared == {(kind.group, kind.plural) for kind in WATCHED_CUSTOM_KINDS}


async def test_the_packaged_schemas_keep_spec_and_prune_unknown_top_level_fields(
    tmp_path: Path,
) -> None:
    rollout = next(doc for doc in seed_documents() if doc["kind"] == "Rollout")
    async with ApiEmulator(crds=crd_documents()) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        client = await KubeClient.from_settings(kubeconfig=str(kubeconfig), context=None,
                                                in_cluster=False, qps=100, burst=100)
        try:
            stored = await client.create(ROLLOUT, "default", {**rollout, "extra": {"x": 1}})
        finally:
            await client.close()

    assert stored["spec"] == rollout["spec"]
    assert "extra" not in stored


def test_shiftd_demo_with_a_speed_that_is_not_positive_exits_1_saying_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--plain", "--speed", "0"]) == 1

    assert "shiftd demo: --speed must be positive" in capsys.readouterr().err
