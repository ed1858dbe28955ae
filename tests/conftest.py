"""Suite-wide fixtures: every async test must leave no asyncio task running behind it.

A leaked task is a bug in structured concurrency (a task group that was not awaited, a bare
``create_task``); left alone it would be silently cancelled when pytest-asyncio closes the loop
and could disturb later tests. The check runs in the test's own event loop: pytest-asyncio runs
an async fixture's setup and its teardown as separate, short-lived tasks, so neither of them nor
pytest-asyncio's own machinery is left running when the snapshot is taken.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

pytest_plugins = ["pytester"]  # tests/unit/test_task_leaks.py runs this file in a sub-session

# How many event-loop turns a test's finished tasks get to run their last steps (callbacks of
# cancelled tasks, connection closes) before whatever remains counts as leaked.
_SETTLE_TURNS = 10


def _loop_scope(item: pytest.Item) -> str:
    marker = item.get_closest_marker("asyncio")
    scope = marker.kwargs.get("loop_scope") if marker is not None else None
    if scope is None:
        scope = item.config.getini("asyncio_default_test_loop_scope") or "function"
    return str(scope)


@pytest.fixture(autouse=True)
def _no_leaked_tasks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail an async test that leaves tasks running (skipped for sync tests)."""
    test = getattr(request.node, "obj", None)
    if (
        inspect.iscoroutinefunction(test)
        # Tests sharing a module- or session-scoped loop may hand tasks to one another.
        and _loop_scope(request.node) == "function"
        # anyio's pytest plugin runs its tests (and this fixture) through a runner task of its
        # own, which a snapshot cannot tell from a leak; the suite uses pytest-asyncio.
        and request.node.get_closest_marker("anyio") is None
    ):
        request.getfixturevalue("_asyncio_task_snapshot")
    yield


@pytest_asyncio.fixture(loop_scope="function")
async def _asyncio_task_snapshot() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    leaked: set[asyncio.Task[object]] = set()
    for _ in range(_SETTLE_TURNS):
        leaked = asyncio.all_tasks() - before - {asyncio.current_task()}
        if not leaked:
            return
        await asyncio.sleep(0)
    for task in leaked:
        task.cancel()
    await asyncio.gather(*leaked, return_exceptions=True)
    names = ", ".join(sorted(f"{task.get_name()} ({task.get_coro()!r})" for task in leaked))
    pytest.fail(f"the test left {len(leaked)} asyncio task(s) running: {names}", pytrace=False)
