"""The suite-wide leaked-task check in tests/conftest.py, exercised in a pytest sub-session."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).parents[1] / "conftest.py"

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""


def run(pytester: pytest.Pytester, tests: str) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makeini(INI)
    pytester.makepyfile(test_probe=tests)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider")


def test_an_async_test_that_leaves_a_task_running_fails(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
import asyncio

async def test_leaks():
    asyncio.get_running_loop().create_task(asyncio.sleep(100), name="forgotten")
""",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*left 1 asyncio task(s) running: forgotten*"])


def test_tests_that_await_or_cancel_their_tasks_pass(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
import asyncio
import anyio
import pytest_asyncio

async def test_awaits_its_task():
    await asyncio.create_task(asyncio.sleep(0))

async def test_uses_a_task_group():
    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.sleep, 0)

@pytest_asyncio.fixture
async def background():
    task = asyncio.create_task(asyncio.sleep(100))
    yield
    task.cancel()

async def test_with_a_fixture_that_cleans_up_in_teardown(background):
    await asyncio.sleep(0)

def test_sync():
    pass
""",
    )
    result.assert_outcomes(passed=4)
