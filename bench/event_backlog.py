"""Benchmark: the CPU an Event costs in shiftd's own Event path, whatever the backlog.

``EventBacklog`` and ``EventRecorder`` (shiftd.kube.events) write Events planned for N
objects, four each as a canary step plans them, to a writer that answers at once in memory
(no HTTP, no server), on the event loop the daemon uses. The CPU per Event is then shiftd's
own Event path alone: folding, picking the next object, building the body, recording what
was written. ``bench/rollouts.py`` measures the same path with its HTTP requests and the
emulator beside it.

    .venv/bin/python bench/event_backlog.py --objects 1000 3000 10000
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import anyio
import anyio.lowlevel

from shiftd.cli.eventloop import backend_options
from shiftd.kube.events import EventBacklog, EventRecorder, PlannedEvent
from shiftd.kube.resources import ResourceKind

EVENTS = (
    PlannedEvent("Normal", "RolloutStepCompleted", "Rollout step 2/4 completed (pause: 60s)"),
    PlannedEvent("Normal", "SetWeight", "Set weight to 20"),
    PlannedEvent("Normal", "RolloutStepCompleted", "Rollout step 3/4 completed (setWeight: 20)"),
    PlannedEvent("Normal", "RolloutPaused", "Rollout is paused (CanaryPauseStep)"),
)


class InMemoryWriter:
    """Answers every create and patch at the next checkpoint, as a server that costs nothing."""

    def __init__(self) -> None:
        self.created = 0

    async def create(self, kind: ResourceKind, namespace: str | None,
                     body: dict[str, Any]) -> dict[str, Any]:
        await anyio.lowlevel.checkpoint()
        self.created += 1
        return body

    async def patch(self, kind: ResourceKind, namespace: str | None, name: str,
                    patch: dict[str, Any] | list[dict[str, Any]], *, patch_type: str,
                    subresource: str | None = None) -> dict[str, Any]:
        await anyio.lowlevel.checkpoint()
        return {}


def rollout(index: int) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": f"r{index:05d}", "namespace": "bench",
                         "uid": f"uid-{index:05d}", "resourceVersion": str(1000 + index)}}


async def cpu_per_event(objects: int) -> tuple[float, int]:
    """CPU seconds per Event written for ``objects`` objects' Events, and how many."""
    writer = InMemoryWriter()

    async def at_once() -> None:
        await anyio.lowlevel.checkpoint()

    backlog = EventBacklog(EventRecorder(writer), concurrency=4, may_start=at_once,
                           max_delay=10.0)
    for index in range(objects):
        obj = rollout(index)
        backlog.add(f"bench/{obj['metadata']['name']}", obj, EVENTS)
    started = time.process_time()
    await backlog.drain()
    return (time.process_time() - started) / writer.created, writer.created


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'objects':>8} {'Events':>8} {'CPU per Event (best of ' + str(args.repeat) + ')':>28}")
    for objects in args.objects:
        best, written = min(anyio.run(cpu_per_event, objects,
                                      backend_options=backend_options("auto"))
                            for _ in range(args.repeat))
        print(f"{objects:>8} {written:>8} {best * 1e6:>25.1f} us")


if __name__ == "__main__":
    main()
