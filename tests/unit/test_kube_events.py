"""EventRecorder: the Event it writes, folding repeats, and never raising."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shiftd.kube.client import PatchType
from shiftd.kube.errors import ApiError, ConnectionFailed, NotFound
from shiftd.kube.events import EventRecorder
from shiftd.kube.resources import EVENT, ResourceKind

Obj = dict[str, Any]

ROLLOUT = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Rollout",
    "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "resourceVersion": "7"},
}


class FakeWriter:
    def __init__(self) -> None:
        self.created: list[tuple[str | None, Obj]] = []
        self.patched: list[tuple[str | None, str, Obj]] = []
        self.fail_create: Exception | None = None
        self.fail_patch: Exception | None = None

    async def create(self, kind: ResourceKind, namespace: str | None, body: Obj, *,
                     parse_answer: bool = True) -> Obj:
        assert kind is EVENT and not parse_answer
        if self.fail_create:
            raise self.fail_create
        self.created.append((namespace, body))
        return body

    async def patch(
        self,
        kind: ResourceKind,
        namespace: str | None,
        name: str,
        patch: Obj | list[Obj],
        *,
        patch_type: PatchType,
        subresource: str | None = None,
        parse_answer: bool = True,
    ) -> Obj:
        assert (kind, patch_type, subresource, parse_answer) == (EVENT, "merge", None, False)
        assert isinstance(patch, dict)
        if self.fail_patch:
            raise self.fail_patch
        self.patched.append((namespace, name, patch))
        return patch


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def writer() -> FakeWriter:
    return FakeWriter()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def recorder(writer: FakeWriter, clock: Clock) -> EventRecorder:
    return EventRecorder(writer, "shiftd", instance="pod-1", clock=clock)


async def test_an_event_names_the_object_the_reason_and_the_component(
    recorder: EventRecorder, writer: FakeWriter
) -> None:
    await recorder.record(ROLLOUT, type="Normal", reason="RolloutUpdated", message="step 1/3")
    [(namespace, body)] = writer.created
    assert namespace == "shop"
    assert body["metadata"]["name"].startswith("web.")
    int(body["metadata"]["name"].removeprefix("web."), 16)
    assert body["metadata"]["namespace"] == "shop"
    assert body["involvedObject"] == {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "name": "web",
        "namespace": "shop",
        "uid": "u-1",
        "resourceVersion": "7",
    }
    assert {k: body[k] for k in ("type", "reason", "message", "count")} == {
        "type": "Normal",
        "reason": "RolloutUpdated",
        "message": "step 1/3",
        "count": 1,
    }
    assert body["source"] == {"component": "shiftd"}
    assert (body["reportingComponent"], body["reportingInstance"]) == ("shiftd", "pod-1")
    assert body["firstTimestamp"] == body["lastTimestamp"] == "2026-01-02T03:04:05Z"


async def test_a_repeated_event_raises_the_count_instead_of_creating_another(
    recorder: EventRecorder, writer: FakeWriter, clock: Clock
) -> None:
    for _ in range(3):
        await recorder.record(ROLLOUT, type="Warning", reason="Degraded", message="no pods")
        clock.now += timedelta(seconds=30)
    [(_, created)] = writer.created
    assert writer.patched == [
        (
            "shop",
            created["metadata"]["name"],
            {"count": 2, "lastTimestamp": "2026-01-02T03:04:35Z"},
        ),
        (
            "shop",
            created["metadata"]["name"],
            {"count": 3, "lastTimestamp": "2026-01-02T03:05:05Z"},
        ),
    ]


async def test_a_different_message_or_reason_is_a_new_event(
    recorder: EventRecorder, writer: FakeWriter
) -> None:
    await recorder.record(ROLLOUT, type="Normal", reason="Step", message="step 1")
    await recorder.record(ROLLOUT, type="Normal", reason="Step", message="step 2")
    await recorder.record(ROLLOUT, type="Normal", reason="Paused", message="step 2")
    assert len(writer.created) == 3
    assert writer.patched == []


async def test_a_repeat_of_an_expired_event_creates_a_new_one(
    recorder: EventRecorder, writer: FakeWriter
) -> None:
    await recorder.record(ROLLOUT, type="Normal", reason="Step", message="m")
    writer.fail_patch = NotFound(404, "NotFound", "events not found")
    await recorder.record(ROLLOUT, type="Normal", reason="Step", message="m")
    writer.fail_patch = None
    await recorder.record(ROLLOUT, type="Normal", reason="Step", message="m")
    assert [body["count"] for _, body in writer.created] == [1, 1]
    assert [patch["count"] for _, _, patch in writer.patched] == [2]


@pytest.mark.parametrize(
    "failure", [ApiError(403, "Forbidden", "no"), ConnectionFailed("connection refused")]
)
async def test_a_failure_to_write_is_logged_and_swallowed(
    recorder: EventRecorder,
    writer: FakeWriter,
    failure: Exception,
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer.fail_create = failure
    with caplog.at_level(logging.WARNING, logger="shiftd.kube.events"):
        await recorder.record(ROLLOUT, type="Warning", reason="Oops", message="m")
    assert "could not record event Oops on web" in caplog.text


async def test_a_failed_repeat_is_swallowed_too(
    recorder: EventRecorder, writer: FakeWriter
) -> None:
    await recorder.record(ROLLOUT, type="Normal", reason="Step", message="m")
    writer.fail_patch = ConnectionFailed("reset")
    await recorder.record(ROLLOUT, type="Normal", reason="Step", message="m")
    writer.fail_patch = None
    await recorder.record(ROLLOUT, type="Normal", reason="Step", message="m")
    assert [patch["count"] for _, _, patch in writer.patched] == [2]


async def test_events_about_cluster_scoped_objects_go_to_the_default_namespace(
    recorder: EventRecorder, writer: FakeWriter
) -> None:
    template = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ClusterAnalysisTemplate",
        "metadata": {"name": "success-rate"},
    }
    await recorder.record(template, type="Warning", reason="Invalid", message="bad query")
    [(namespace, body)] = writer.created
    assert namespace == body["metadata"]["namespace"] == "default"
    assert "namespace" not in body["involvedObject"]
