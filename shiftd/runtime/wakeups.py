"""One-shot wake-ups for the engine's hot handoffs: a key queued for an idle worker, a write
handed to its writer and its result handed back.

A ``Wakeup`` is a future of the running event loop. It is set at most once and awaited by one
task. Making one costs about a tenth of an ``anyio.Event``, which asks which async library is
running each time it is made (a due step makes one per write: two per Rollout).

The daemon runs on anyio's asyncio backend (uvloop when installed). A cancel scope cancels
the waiting task and, with it, the future it awaits. As with an Event, a wake-up set after its
waiter was cancelled still reads as set, so that waiter can pass the wake-up on.
"""

from __future__ import annotations

import asyncio


class Wakeup:
    """Set once; one task waits for it."""

    __slots__ = ("_future", "_set")

    def __init__(self) -> None:
        self._future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._set = False

    def set(self) -> None:
        self._set = True
        if not self._future.done():  # cancelled with its waiter: nobody to wake
            self._future.set_result(None)

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> None:
        await self._future


__all__ = ["Wakeup"]
