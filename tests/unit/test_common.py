"""The leaf helpers: RFC 7386 merge patch, and tasks started for a block with errors unwrapped."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from anyio.abc import TaskStatus

from shiftd.common.mergepatch import merge_patch
from shiftd.common.tasks import running, single_error

# RFC 7386's own examples (appendix A), plus what the API server relies on.
MERGE_CASES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), MERGE_CASES)
def test_a_merge_patch_gives_what_rfc_7386_says(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_a_merge_patch_changes_neither_the_target_nor_the_patch() -> None:
    target = {"spec": {"replicas": 1, "selector": {"app": "x"}}}
    patch = {"spec": {"replicas": 3, "template": {"labels": ["a"]}}}
    result = merge_patch(target, patch)
    result["spec"]["template"]["labels"].append("b")
    assert target == {"spec": {"replicas": 1, "selector": {"app": "x"}}}
    assert patch == {"spec": {"replicas": 3, "template": {"labels": ["a"]}}}


def test_a_single_error_comes_out_of_nested_groups_as_itself() -> None:
    with pytest.raises(KeyError), single_error():
        raise BaseExceptionGroup("outer", [ExceptionGroup("inner", [KeyError("x")])])


def test_several_errors_stay_a_group() -> None:
    with pytest.raises(ExceptionGroup) as caught, single_error():
        raise ExceptionGroup("two", [KeyError("x"), ValueError("y")])
    assert len(caught.value.exceptions) == 2


async def test_tasks_are_started_in_order_before_the_block_and_cancelled_after_it() -> None:
    events: list[str] = []

    async def task(name: str, *, task_status: TaskStatus[None]) -> None:
        events.append(f"{name} started")
        task_status.started()
        try:
            await anyio.sleep_forever()
        finally:
            events.append(f"{name} cancelled")

    async def first(*, task_status: TaskStatus[None]) -> None:
        await task("first", task_status=task_status)

    async def second(*, task_status: TaskStatus[None]) -> None:
        await task("second", task_status=task_status)

    async with running(first, second):
        events.append("block")
    assert events[:3] == ["first started", "second started", "block"]
    assert sorted(events[3:]) == ["first cancelled", "second cancelled"]


async def test_the_blocks_own_error_comes_through_unwrapped() -> None:
    async def idle(*, task_status: TaskStatus[None]) -> None:
        task_status.started()
        await anyio.sleep_forever()

    with pytest.raises(AssertionError, match="the test's own failure"):
        async with running(idle):
            raise AssertionError("the test's own failure")


async def test_a_task_that_fails_while_starting_raises_its_own_error() -> None:
    async def broken(*, task_status: TaskStatus[None]) -> None:
        raise OSError("address in use")

    with pytest.raises(OSError, match="address in use"):
        async with running(broken):
            pytest.fail("the block must not run when a task could not start")
