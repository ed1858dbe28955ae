"""Chaos scenarios, short and seeded: Rollouts of the seeds' shapes, analysed against a real
Prometheus, rolled out by the daemon (a process) through API server restarts, failing
requests, SIGKILLs and a Prometheus outage; and, on the injected clock, a timer firing late
and a daemon restarted mid-pause.

The invariant monitor judges every state (weights add up, no traffic to unavailable pods,
steps and weights only forward, none skipped, no duplicate ReplicaSet, no double
measurement); each scenario then requires every Rollout to end where it should within a
bound after the faults stop, and /healthz to answer. ``SHIFTD_CHAOS_SEED`` replays a seed
that a failure printed. ``bench/chaos.py`` runs the same scenarios long and large.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import anyio
import pytest

from shiftd.kube.informer import Informer
from shiftd.kube.resources import ROLLOUT
from shiftd.runtime.clock import ManualClock
from tests.integration.daemon_support import running_daemon, weights
from tests.integration.harness import DAEMON_USER, Cluster, test_cluster
from tests.support.chaos import ChaosPlan, ChaosReport, run_scenario
from tests.support.fleet import NEXT_IMAGE, Fleet, shape_objects
from tests.support.prometheus import prometheus_binary, stoppable_istio_prometheus

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(prometheus_binary() is None, reason="Debian's prometheus is not installed"),
]


Obj = dict[str, Any]


def seed(default: int) -> int:
    return int(os.environ.get("SHIFTD_CHAOS_SEED") or default)


async def chaos(plan: ChaosPlan) -> ChaosReport:
    async with stoppable_istio_prometheus() as (prometheus, exporter), \
            test_cluster() as cluster, cluster.kubelet():
        if cluster.api is None:
            pytest.skip("a real API server has no fault injection")
        fleet = Fleet(cluster.client, cluster.namespace, count=plan.rollouts,
                      failing=plan.failing)
        report = await run_scenario(
            api=cluster.api, fleet=fleet, daemon_kubeconfig=cluster.daemon_kubeconfig_path,
            daemon_user=DAEMON_USER.name, prometheus=prometheus, exporter=exporter, plan=plan)
    assert report.unfinished == [], (
        f"seed {plan.seed}: stuck Rollouts {report.unfinished}\n{report.daemon_log}")
    assert report.healthz_failures == [], f"seed {plan.seed}: {report.healthz_failures}"
    return report


async def test_rollouts_finish_through_api_server_restarts_one_losing_the_watch_history(
) -> None:
    report = await chaos(ChaosPlan(seed=seed(1201), failing=(1,), api_restarts=3,
                                   lost_history_at=1))
    assert report.faults["api-restart"] == 2
    assert report.faults["api-restart-history-lost"] == 1


async def test_rollouts_finish_with_a_tenth_of_the_daemons_requests_failing() -> None:
    report = await chaos(ChaosPlan(seed=seed(1202), failing=(2,), request_faults=0.1,
                                   watch_faults=0.5, fault_seconds=4))
    assert report.faulted_writes > 0
    assert report.faults["watch-cut"] + report.faults["watch-expired"] > 0


async def test_rollouts_finish_through_sigkills_of_the_daemon_at_random_moments() -> None:
    report = await chaos(ChaosPlan(seed=seed(1203), failing=(0,), kills=2))
    assert sum(n for kind, n in report.faults.items() if kind.startswith("sigkill")) == 2


async def test_rollouts_finish_after_prometheus_is_down_for_a_while() -> None:
    report = await chaos(ChaosPlan(seed=seed(1204), failing=(1,), prometheus_outages=1,
                                   outage_seconds=3, fault_seconds=1))
    assert report.faults["prometheus-down"] == 1


async def test_a_timer_firing_late_takes_one_step_and_a_restart_mid_pause_keeps_its_deadline(
) -> None:
    clock = ManualClock()
    phases: list[str] = []  # every phase the Rollout shows, as its watch delivers them

    def record(event_type: str, obj: Obj) -> None:
        phases.append(str((obj.get("status") or {}).get("phase")))

    async with test_cluster() as cluster, cluster.kubelet(), anyio.create_task_group() as tg:
        await tg.start(Informer(cluster.client, ROLLOUT, namespaces=[cluster.namespace],
                                on_change=record).run)
        objects = shape_objects("late", "host-split")
        for kind, obj in objects:
            obj["metadata"]["namespace"] = cluster.namespace
            if kind is ROLLOUT:
                canary = obj["spec"]["strategy"]["canary"]
                canary.pop("analysis")
                canary["steps"] = [{"setWeight": 20}, {"pause": {"duration": "30s"}},
                                   {"setWeight": 50}, {"pause": {"duration": "30s"}}]
            await cluster.client.create(kind, cluster.namespace, obj)

        async def paused_at(step: int) -> Obj | None:
            status = (await cluster.rollout("late")).get("status") or {}
            ready = status.get("phase") == "Paused" and status.get("currentStepIndex") == step
            return status if ready else None

        async with running_daemon(cluster, clock=clock):
            await cluster.wait_for(lambda: phase_of(cluster, "Healthy"), what="deployed")
            await cluster.set_image("late", NEXT_IMAGE)
            await cluster.wait_for(lambda: paused_at(1), what="paused after 20 %")
            clock.advance(95)  # the pause's timer fires 65 s late: past the next pause too
            late = await cluster.wait_for(lambda: paused_at(3), what="paused after 50 %")
            assert weights(await cluster.vs("late-vsvc")) == {"late-stable": 50,
                                                              "late-canary": 50}
            started = datetime.fromisoformat(late["pauseConditions"][0]["startTime"])
            assert started == clock.now().replace(microsecond=0)  # begun late, not back-dated
        clock.advance(20)  # the daemon is down for 20 s of the second pause's 30
        async with running_daemon(cluster, clock=clock):
            clock.advance(10)  # the pause ends now, unless a restart started it again
            await cluster.wait_for(lambda: phase_of(cluster, "Healthy", promoted=True),
                                   what="promoted 30 s after the second pause began")
        # a daemon (re)starting plans only once its VirtualService cache is filled: it never
        # judged the Rollout invalid ("VirtualService not found") on the way
        assert "Degraded" not in phases, phases
        tg.cancel_scope.cancel()


async def phase_of(cluster: Cluster, phase: str, *, promoted: bool = False) -> bool:
    status = (await cluster.rollout("late")).get("status") or {}
    return status.get("phase") == phase and (
        not promoted or (status.get("stableRS") == status.get("currentPodHash")
        and status.get("currentStepIndex") == 4))
