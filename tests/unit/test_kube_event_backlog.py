"""EventBacklog: Events folded per object, written in the order planned, after the caller
lets them start (or at their deadline), a bounded number at a time."""

from __future__ import annotations

import anyio
import anyio.lowlevel

from shiftd.kube.events import EventBacklog, EventRecorder, PlannedEvent
from tests.unit.test_kube_events import ROLLOUT, FakeWriter

STARTED = PlannedEvent("Normal", "RolloutUpdated", "updated to revision 2")
WEIGHT = PlannedEvent("Normal", "TrafficWeightUpdated", "weight 10")


def rollout(name: str) -> dict[str, object]:
    return {**ROLLOUT, "metadata": {**ROLLOUT["metadata"], "name": name}}


async def allowed() -> None:
    await anyio.lowlevel.checkpoint()


async def test_an_event_planned_twice_before_it_is_written_is_written_once_counted_twice(
) -> None:
    writer = FakeWriter()
    backlog = EventBacklog(EventRecorder(writer), concurrency=2, may_start=allowed,
                           max_delay=10.0)
    backlog.add("shop/web", ROLLOUT, [STARTED, WEIGHT])
    backlog.add("shop/web", ROLLOUT, [WEIGHT])
    assert len(backlog) == 2
    await backlog.drain()
    assert [(body["reason"], body["count"]) for _, body in writer.created] == [
        ("RolloutUpdated", 1), ("TrafficWeightUpdated", 2)]
    assert len(backlog) == 0


async def test_events_keep_only_a_reference_to_their_object() -> None:
    writer = FakeWriter()
    backlog = EventBacklog(EventRecorder(writer), concurrency=1, may_start=allowed,
                           max_delay=10.0)
    backlog.add("shop/web", {**ROLLOUT, "spec": {"replicas": 3}, "status": {"x": 1}}, [STARTED])
    await backlog.drain()
    (_, body), = writer.created
    assert body["involvedObject"] == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                      "name": "web", "namespace": "shop", "uid": "u-1",
                                      "resourceVersion": "7"}


async def test_nothing_is_written_before_the_caller_lets_the_backlog_start() -> None:
    writer = FakeWriter()
    go = anyio.Event()

    async def when_told() -> None:
        await go.wait()

    backlog = EventBacklog(EventRecorder(writer), concurrency=3, may_start=when_told,
                           max_delay=3600.0)
    for index in range(5):
        backlog.add(f"shop/web-{index}", rollout(f"web-{index}"), [STARTED, WEIGHT])
    async with anyio.create_task_group() as group:
        group.start_soon(backlog.drain)
        for _ in range(10):
            await anyio.lowlevel.checkpoint()
        assert writer.created == []
        go.set()
    names = [body["involvedObject"]["name"] for _, body in writer.created]
    assert sorted(names) == sorted(f"web-{index}" for index in range(5) for _ in range(2))
    for index in range(5):  # each object's Events in the order planned
        reasons = [body["reason"] for _, body in writer.created
                   if body["involvedObject"]["name"] == f"web-{index}"]
        assert reasons == ["RolloutUpdated", "TrafficWeightUpdated"]


async def test_a_busy_caller_holds_events_back_only_until_their_deadline() -> None:
    writer = FakeWriter()
    backlog = EventBacklog(EventRecorder(writer), concurrency=1,
                           may_start=anyio.sleep_forever, max_delay=0.0)
    backlog.add("shop/web", ROLLOUT, [STARTED])
    with anyio.fail_after(5):
        await backlog.drain()
    assert [body["reason"] for _, body in writer.created] == ["RolloutUpdated"]
