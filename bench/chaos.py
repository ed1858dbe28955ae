"""Benchmark: the chaos scenarios of tests/integration/test_chaos.py, long and large.

Each scenario seeds ``--rollouts`` Rollouts of the seeds' shapes (every ``--failing-every``-th
one with 65 % errors, so its analysis aborts it), analysed against a real Prometheus, and
lets ``shiftd run`` (a child process) roll them all to a new image while one kind of fault
hits (or, with ``--scenario combined``, all at once):

- ``restarts``: ``--api-restarts`` API server restarts (one losing the watch history);
- ``requests``: ``--request-faults`` of the daemon's requests failing (409, 429, 500, 503,
  unanswered; watches cut and expired);
- ``kills``: ``--kills`` SIGKILLs of the daemon, at random moments and right after its writes;
- ``prometheus``: ``--prometheus-outages`` outages of ``--outage-seconds`` each.

The API server is the in-process emulator (TLS, RBAC, the daemon bound to deploy/rbac.yaml)
with the invariant monitor of the integration tests watching. For each scenario it prints the
Rollouts completed, the faults injected by kind, the invariant violations, the stuck Rollouts
(not in the phase Argo gives them for what their analysis measured: ``Fleet``), the failing
canaries promoted because their analysis could not measure, and the extra write requests
the faults caused; it exits 1 on any violation or stuck Rollout.

    .venv/bin/python bench/chaos.py --rollouts 100 --api-restarts 10 --request-faults 0.1 \\
        --kills 20 --prometheus-outages 2 --outage-seconds 60
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.harness import DAEMON_USER, test_cluster
from tests.support.chaos import ChaosPlan, ChaosReport, run_scenario
from tests.support.fleet import Fleet
from tests.support.prometheus import stoppable_istio_prometheus

SCENARIOS = ("restarts", "requests", "kills", "prometheus")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=(*SCENARIOS, "all", "combined"), default="all")
    parser.add_argument("--rollouts", type=int, default=100)
    parser.add_argument("--failing-every", type=int, default=10,
                        help="every Nth Rollout's canary fails its analysis (0: none)")
    parser.add_argument("--api-restarts", type=int, default=10)
    parser.add_argument("--request-faults", type=float, default=0.1)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--prometheus-outages", type=int, default=2)
    parser.add_argument("--outage-seconds", type=float, default=60.0)
    parser.add_argument("--fault-seconds", type=float, default=120.0,
                        help="the faults of a scenario are spread over this long")
    parser.add_argument("--settle-seconds", type=float, default=300.0)
    parser.add_argument("--error-limit", type=int, default=None,
                        help="the templates' consecutiveErrorLimit (default: Argo's, 4)")
    parser.add_argument("--seed", type=int, default=12)
    return parser.parse_args()


def plans(options: argparse.Namespace) -> list[tuple[str, ChaosPlan]]:
    failing = tuple(range(0, options.rollouts, options.failing_every)) \
        if options.failing_every else ()
    base = ChaosPlan(seed=options.seed, rollouts=options.rollouts, failing=failing,
                     fault_seconds=options.fault_seconds,
                     settle_seconds=options.settle_seconds,
                     outage_seconds=options.outage_seconds,
                     error_limit=options.error_limit, qps=200,
                     deploy_seconds=max(60.0, options.rollouts * 3.0))
    faults = {
        "restarts": {"api_restarts": options.api_restarts, "lost_history_at": 1},
        "requests": {"request_faults": options.request_faults},
        "kills": {"kills": options.kills},
        "prometheus": {"prometheus_outages": options.prometheus_outages},
    }
    if options.scenario == "combined":
        merged = {key: value for fault in faults.values() for key, value in fault.items()}
        return [("combined", replace(base, **merged))]
    names = SCENARIOS if options.scenario == "all" else (options.scenario,)
    return [(name, replace(base, seed=base.seed + index, **faults[name]))
            for index, name in enumerate(names)]


async def scenario(plan: ChaosPlan) -> tuple[ChaosReport, list[str]]:
    async with stoppable_istio_prometheus() as (prometheus, exporter), \
            test_cluster() as cluster, cluster.kubelet():
        assert cluster.api is not None, "the benchmark runs on the emulator"
        cluster.monitor.expect_violations()  # counted and reported here instead
        fleet = Fleet(cluster.client, cluster.namespace, count=plan.rollouts,
                      failing=plan.failing)
        report = await run_scenario(
            api=cluster.api, fleet=fleet, daemon_kubeconfig=cluster.daemon_kubeconfig_path,
            daemon_user=DAEMON_USER.name, prometheus=prometheus, exporter=exporter, plan=plan)
        violations = list(cluster.monitor.violations)
    return report, violations


def describe(name: str, plan: ChaosPlan, report: ChaosReport, violations: list[str],
             seconds: float) -> str:
    faults = ", ".join(f"{kind} {count}" for kind, count in sorted(report.faults.items()))
    lines = [
        f"== {name} (seed {plan.seed}, {seconds:.0f} s)",
        f"  Rollouts completed:   {report.completed}/{plan.rollouts} "
        f"({len(plan.failing)} expected to abort)",
        f"  faults injected:      {faults or 'none'}",
        f"  invariant violations: {len(violations)}",
        f"  stuck Rollouts:       {len(report.unfinished)}",
        f"  failing canaries promoted unmeasured (as Argo would): "
        f"{len(report.promoted_unmeasured)} {' '.join(report.promoted_unmeasured)}".rstrip(),
        f"  healthy canaries aborted by their analysis (a run ended Error or Failed): "
        f"{len(report.aborted_healthy)}",
        f"  daemon writes:        {report.daemon_writes} "
        f"(extra, answered with an injected fault and retried or replanned: "
        f"{report.faulted_writes})",
        f"  /healthz failures:    {len(report.healthz_failures)}",
    ]
    lines += [f"    violation: {v}" for v in violations[:20]]
    lines += [f"    stuck: {s}" for s in report.unfinished[:20]]
    lines += [f"    healthz: {h}" for h in report.healthz_failures[:5]]
    return "\n".join(lines)


async def main() -> int:
    options = arguments()
    # the monitor's informers warn at every restart; the figures below say what matters
    logging.getLogger("shiftd.kube.informer").setLevel(logging.ERROR)
    failed = False
    for name, plan in plans(options):
        started = time.monotonic()
        report, violations = await scenario(plan)
        print(describe(name, plan, report, violations, time.monotonic() - started), flush=True)
        failed |= bool(violations or report.unfinished or report.healthz_failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
