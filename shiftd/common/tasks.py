"""Starting tasks in a task group for the length of a block, with their errors unwrapped.

``async with running(kubelet.run, daemon.run) as group:`` opens a task group, starts each
task with ``await group.start(...)`` (so each has signalled ``task_status.started()`` before
the next starts, and before the block runs), cancels them all when the block is left, and,
when exactly one exception ends the group, raises that exception itself rather than an
``ExceptionGroup`` around it, so a caller (a test's assertion, the demo, the daemon) sees the
real error. Imports nothing of shiftd.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
from anyio.abc import TaskGroup

__all__ = ["Starter", "running", "single_error"]

Starter = Callable[..., Coroutine[Any, Any, Any]]
"""A task function that takes ``task_status`` and calls ``task_status.started()``."""


@contextmanager
def single_error() -> Iterator[None]:
    """Re-raise an exception group holding one exception (however deeply nested) as that
    exception; a group of several is raised as it is."""
    try:
        yield
    except BaseExceptionGroup as group:
        error: BaseException = group
        while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]
        if error is group:
            raise
        raise error from None


@asynccontextmanager
async def running(*starters: Starter) -> AsyncIterator[TaskGroup]:
    """A task group with ``starters`` started in order; cancelled when the block is left.

    The group is yielded so the block may ``start_soon`` more tasks that need no readiness.
    """
    with single_error():
        async with anyio.create_task_group() as group:
            for start in starters:
                await group.start(start)
            try:
                yield group
            finally:
                group.cancel_scope.cancel()
