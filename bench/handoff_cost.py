"""The CPU of the engine's handoffs, without I/O: a key from the queue to a worker, and a write
from a reconcile to its writer and back.

``bench/rollouts.py`` measures a whole Rollout step; each step hands its key to a worker once
and each of its writes to a writer and back (a VirtualService patch and a status patch). This
repeats those handoffs with work that does nothing but yield once, as a request does, from
``--tasks`` worker tasks, and prints this process's CPU per handoff (best of ``--rounds``), on
the event loop the daemon uses (uvloop when installed).

    PYTHONPATH=. .venv/bin/python bench/handoff_cost.py
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import anyio

from shiftd.cli.eventloop import backend_options
from shiftd.runtime.keys import ObjectKey
from shiftd.runtime.queue import WorkQueue
from shiftd.runtime.writers import Writer


async def _yield_once() -> None:
    await anyio.lowlevel.checkpoint()


async def writer_round_trips(jobs: int, tasks: int) -> float:
    """CPU seconds per job submitted to a Writer and awaited, from ``tasks`` submitters."""
    writer = Writer("traffic", concurrency=tasks)
    async with anyio.create_task_group() as group:
        await group.start(writer.run)

        async def submitter(count: int) -> None:
            for _ in range(count):
                await writer.submit(_yield_once)

        started = time.process_time()
        async with anyio.create_task_group() as submitters:
            for _ in range(tasks):
                submitters.start_soon(submitter, jobs // tasks)
        spent = time.process_time() - started
        group.cancel_scope.cancel()
    return spent / (jobs // tasks * tasks)


async def queue_handoffs(keys: int, workers: int) -> float:
    """CPU seconds per key added to a WorkQueue and taken by one of ``workers`` workers."""
    queue = WorkQueue()
    taken = 0

    async def worker() -> None:
        nonlocal taken
        while True:
            key = await queue.get()
            await _yield_once()
            queue.done(key)
            taken += 1

    names = [ObjectKey("Rollout", "bench", f"r-{index}") for index in range(keys)]
    async with anyio.create_task_group() as group:
        for _ in range(workers):
            group.start_soon(worker)
        await anyio.wait_all_tasks_blocked()
        started = time.process_time()
        for name in names:
            queue.add(name)
            if len(queue) >= workers:  # as timers do: a burst, workers draining it
                await _yield_once()
        while taken < keys:
            await _yield_once()
        spent = time.process_time() - started
        group.cancel_scope.cancel()
    return spent / keys


async def run(args: argparse.Namespace) -> None:
    for name, measure in (("Writer.submit round trip", writer_round_trips),
                          ("WorkQueue add -> get -> done", queue_handoffs)):
        best = min([await measure(args.jobs, args.tasks) for _ in range(args.rounds)])
        print(f"{name:32s} {best * 1e6:7.2f} us CPU per handoff")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=64_000)
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--event-loop", choices=("auto", "uvloop", "asyncio"), default="auto")
    args = parser.parse_args(argv)
    anyio.run(run, args, backend_options=backend_options(args.event_loop))


if __name__ == "__main__":
    main()
