"""Running the demo: emulator, fake kubelet and the real daemon, then the stages in order.

``run_demo`` starts the embedded API emulator with the demo's CRDs, a ``FakeKubelet`` that
makes pods "ready", the real ``Daemon`` on a ``ScaledClock`` (``--speed`` rollout seconds per
wall second) and the demo's own informers, all in one task group (``shiftd.common.tasks``);
then plays the scenario, stage by stage, and stops at the first state not reached in time
(or reached sooner than the spec's pauses and delays allow).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import anyio
from kubernetes_asyncio.client import ApiClient

from shiftd.assembly import Daemon
from shiftd.cli.ctl import CommandError
from shiftd.cli.demo.display import Display, daemon_logs_shown
from shiftd.cli.demo.scenario import SCENARIO, Stage
from shiftd.cli.demo.seed import (
    MANIFESTS,
    NAMESPACE,
    ROLLOUT_NAME,
    SEED_FILE,
    DemoError,
    crd_documents,
    seed_documents,
)
from shiftd.cli.demo.snapshot import Observation, Snapshot, snapshot_of
from shiftd.common.tasks import running
from shiftd.config import parse_settings
from shiftd.kube.client import KubeClient
from shiftd.kube.errors import KubeError
from shiftd.kube.informer import Informer
from shiftd.kube.resources import EVENT, REPLICA_SET, ROLLOUT, SERVICE, VIRTUAL_SERVICE
from shiftd.runtime.clock import ScaledClock
from shiftd.sim import ApiEmulator, FakeKubelet

__all__ = ["run_demo"]

Obj = dict[str, Any]

# Wall seconds the fake pods take to become ready, in rollout seconds (divided by --speed).
_READY_AFTER = 2.0
# How late, in wall seconds, the demo may observe a change the daemon made (times --speed in
# rollout seconds): a state reached after a pause or delay may seem that much early. The
# allowance never exceeds half the wait, so a daemon that skips a wait is always caught.
_OBSERVATION_LAG = 0.25


@dataclass
class _World:
    """The running demo: emulator, daemon, the demo's client and its watches."""

    client: KubeClient
    seed: list[Obj]
    clock: ScaledClock
    display: Display
    started: float = field(default_factory=time.monotonic)
    history: list[Observation] = field(default_factory=list)
    _informers: dict[str, Informer] = field(default_factory=dict)
    _changed: anyio.Event = field(default_factory=anyio.Event)

    def watch(self) -> list[Informer]:
        def changed(_type: str, _obj: Obj) -> None:
            self._record()

        for kind in (ROLLOUT, VIRTUAL_SERVICE, REPLICA_SET, SERVICE):
            self._informers[kind.kind] = Informer(
                self.client, kind, namespaces=[NAMESPACE], on_change=changed)
        self._informers[EVENT.kind] = Informer(
            self.client, EVENT, namespaces=[NAMESPACE], on_change=self._event)
        return list(self._informers.values())

    def _record(self) -> None:
        get = self._informers
        rollout = get[ROLLOUT.kind].get(NAMESPACE, ROLLOUT_NAME)
        canary = ((rollout or {}).get("spec") or {}).get("strategy", {}).get("canary") or {}
        vs_name = (((canary.get("trafficRouting") or {}).get("istio") or {})
                   .get("virtualService") or {}).get("name")
        services = {name: get[SERVICE.kind].get(NAMESPACE, name)
                    for name in (canary.get("stableService"), canary.get("canaryService"))
                    if name}
        snapshot = snapshot_of(
            rollout,
            get[VIRTUAL_SERVICE.kind].get(NAMESPACE, vs_name) if vs_name else None,
            get[REPLICA_SET.kind].items(NAMESPACE),
            services,
        )
        if self.history and self.history[-1].snapshot == snapshot:
            return
        self.history.append(Observation(snapshot, self.clock.now(), self.elapsed()))
        self.display.show(snapshot)
        self._changed.set()
        self._changed = anyio.Event()

    def _event(self, kind: str, event: Obj) -> None:
        if kind != "ADDED" or (event.get("source") or {}).get("component") != "shiftd":
            return
        self.display.detail(f"event {event.get('type')} {event.get('reason')}: "
                            f"{event.get('message')}")

    async def changed(self) -> None:
        await self._changed.wait()

    def elapsed(self) -> float:
        return time.monotonic() - self.started


@asynccontextmanager
async def _running(*, speed: float, out: TextIO, live: bool) -> AsyncIterator[_World]:
    seed, crds = seed_documents(), crd_documents()
    clock = ScaledClock(speed)
    with tempfile.TemporaryDirectory(prefix="shiftd-demo-") as scratch:
        async with ApiEmulator(crds=crds) as api:
            kubeconfig = api.write_kubeconfig(Path(scratch) / "kubeconfig")
            daemon = Daemon(_settings(kubeconfig), clock=clock)
            display = Display(out, live=live, now=clock.now)
            client = await KubeClient.from_settings(
                kubeconfig=str(kubeconfig), context=None, in_cluster=False, qps=1000, burst=1000)
            try:
                async with ApiClient(api.configuration()) as kubelet_client:
                    world = _World(client=client, seed=seed, clock=clock, display=display)
                    kubelet = FakeKubelet(kubelet_client, namespaces=[NAMESPACE],
                                          ready_after=_READY_AFTER / speed)
                    starters = [kubelet.run, daemon.run,
                                *(informer.run for informer in world.watch())]
                    with daemon_logs_shown(display):
                        async with running(*starters) as group:
                            if live:
                                group.start_soon(_tick, display)
                            display.detail(f"API emulator at {api.url}; daemon metrics at "
                                           f"http://127.0.0.1:{daemon.port}/metrics")
                            yield world
                    display.close()
            finally:
                with anyio.CancelScope(shield=True):
                    await client.close()


def _settings(kubeconfig: Path) -> Any:
    return parse_settings({
        "kubernetes": {"kubeconfig": str(kubeconfig), "qps": 1000, "burst": 1000},
        "namespaces": [NAMESPACE],
        "listen": {"port": 0},
        "workers": 4,
    }, source="demo settings")


async def _tick(display: Display) -> None:
    while True:
        await anyio.sleep(0.1)  # only redraws the pause countdown; nothing waits on it
        display.refresh()


async def _reach(world: _World, stage: Stage, *, since: int, deadline: float) -> (
    Observation | None
):
    """The first state recorded from ``since`` on that matches; ``None`` at the deadline."""
    with anyio.move_on_after(deadline):
        while True:
            for observation in world.history[since:]:
                if not stage.expect.mismatches(observation.snapshot):
                    return observation
            since = len(world.history)
            await world.changed()
    return None


async def _play(world: _World, scenario: Sequence[Stage], *, speed: float, slack: float) -> (
    bool
):
    """Run the stages in order; stop at the first state not reached. True if all were."""
    display = world.display
    previous: Observation | None = None
    for number, stage in enumerate(scenario, start=1):
        display.heading(f"[{number}/{len(scenario)}] {stage.title}")
        since = len(world.history)
        if stage.action is not None:
            display.detail(f"$ {stage.action.describe()}")
            try:
                sent = await stage.action.run(world)
            except (KubeError, CommandError, DemoError) as error:
                display.fail(f"{stage.action.describe()} failed: {error}")
                return False
            for line in sent:
                display.detail(f"→ {line}")
        steps = world.history[-1].snapshot.steps if world.history else 0
        reached = await _reach(world, stage, since=since,
                               deadline=slack + stage.waits / speed)
        if reached is None:
            last = world.history[-1].snapshot if world.history else Snapshot()
            display.fail(f"not reached within {slack + stage.waits / speed:.1f}s: "
                         f"{stage.expect.describe(steps or last.steps)}")
            for problem in stage.expect.mismatches(last):
                display.fail(problem)
            return False
        took = ""
        if previous is not None and stage.waits:
            waited = (reached.at - previous.at).total_seconds()
            took = f" after {waited:.0f}s of rollout time"
            allowance = min(stage.waits / 2, 1 + _OBSERVATION_LAG * speed)
            if waited < stage.waits - allowance:
                display.fail(f"reached{took}: the spec asks for {stage.waits:.0f}s")
                return False
        display.ok(f"{stage.expect.describe(reached.snapshot.steps)}{took} "
                   f"[{reached.wall:.1f}s]")
        previous = reached
    return True


async def run_demo(
    speed: float,
    plain: bool,
    *,
    scenario: Sequence[Stage] = SCENARIO,
    out: TextIO | None = None,
    slack: float = 10.0,
) -> int:
    """Play ``scenario`` (seed 000's by default); 0 when every state was reached, else 1.

    ``speed`` is rollout seconds per wall second; ``slack`` is the wall seconds each state gets
    on top of the pauses and delays it waits for.
    """
    out = sys.stdout if out is None else out
    if speed <= 0:
        print("shiftd demo: --speed must be positive", file=sys.stderr)
        return 1
    live = not plain and out.isatty() and os.environ.get("TERM") != "dumb"
    out.write(f"shiftd demo: seed 000 ({MANIFESTS}/{SEED_FILE}, shipped with shiftd) on the "
              f"embedded API emulator, speed x{speed:g}\n")
    try:
        async with _running(speed=speed, out=out, live=live) as world:
            matched = await _play(world, scenario, speed=speed, slack=slack)
            elapsed = world.elapsed()
    except DemoError as error:
        print(f"shiftd demo: {error}", file=sys.stderr)
        return 1
    verdict = "every state matched" if matched else "a state was not reached"
    out.write(f"shiftd demo: {verdict} ({elapsed:.1f}s)\n")
    out.flush()
    return 0 if matched else 1
