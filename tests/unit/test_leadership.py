"""Leader election: the pure lease decision in a table, and electors sharing one Lease on a
manual clock — one leads, a leader that cannot renew steps down before its lease can be
taken, a standby takes over within the lease duration, and a released lease is taken at once.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from shiftd.decide.leadership import LeaseTimings, next_lease
from shiftd.kube.errors import Conflict, NotFound, TransportError
from shiftd.kube.resources import ResourceKind
from shiftd.runtime.clock import ManualClock
from shiftd.runtime.leadership import LeaderElector

Obj = dict[str, Any]
T0 = datetime(2026, 12, 1, tzinfo=UTC)
TIMINGS = LeaseTimings()


def lease(holder: str, *, transitions: int = 0) -> Obj:
    return {"metadata": {"name": "l", "resourceVersion": "1"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                     "acquireTime": "2026-12-01T00:00:00.000000Z",
                     "renewTime": "2026-12-01T00:00:00.000000Z",
                     "leaseTransitions": transitions}}


@pytest.mark.parametrize(("current", "seconds_since_seen", "holder", "transitions"), [
    (None, 0, "me", 0),                    # no Lease yet: create it
    (lease(""), 0, "me", 0),               # released: take it at once
    (lease("other"), 14.9, None, None),    # held and renewed within its duration: wait
    (lease("other", transitions=2), 15, "me", 3),  # not renewed for its duration: take it
    (lease("me", transitions=2), 1000, "me", 2),   # ours: renew
])
def test_the_lease_decision(current: Obj | None, seconds_since_seen: float,
                            holder: str | None, transitions: int | None) -> None:
    spec = next_lease(current, identity="me", observed_at=T0,
                      now=T0 + timedelta(seconds=seconds_since_seen), timings=TIMINGS)
    if holder is None:
        assert spec is None
        return
    assert spec is not None
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == (holder, transitions)
    assert spec["renewTime"].endswith("Z")
    if current is not None and current["spec"]["holderIdentity"] == "me":
        assert spec["acquireTime"] == current["spec"]["acquireTime"]


class LeaseStore:
    """One Lease in memory, replaced only at its current resourceVersion; ``cut`` makes one
    identity's requests fail as if its API server were unreachable."""

    def __init__(self) -> None:
        self.lease: Obj | None = None
        self.version = 0
        self.cut: set[str] = set()

    def client(self, identity: str) -> Any:
        store = self

        class Client:
            async def get(self, kind: ResourceKind, namespace: str | None, name: str) -> Obj:
                await anyio.lowlevel.checkpoint()
                store.check(identity)
                if store.lease is None:
                    raise NotFound(404, "NotFound", "leases not found")
                return copy.deepcopy(store.lease)

            async def create(self, kind: ResourceKind, namespace: str | None,
                             body: Obj) -> Obj:
                store.check(identity)
                if store.lease is not None:
                    raise Conflict(409, "AlreadyExists", "exists")
                return store.put(body)

            async def replace(self, kind: ResourceKind, namespace: str | None, name: str,
                              body: Obj) -> Obj:
                store.check(identity)
                assert store.lease is not None
                if body["metadata"]["resourceVersion"] != store.lease["metadata"][
                        "resourceVersion"]:
                    raise Conflict(409, "Conflict", "the object has been modified")
                return store.put(body)

        return Client()

    def check(self, identity: str) -> None:
        if identity in self.cut:
            raise TransportError("connection refused")

    def put(self, body: Obj) -> Obj:
        self.version += 1
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(self.version)
        self.lease = body
        return copy.deepcopy(body)

    @property
    def holder(self) -> str | None:
        return None if self.lease is None else self.lease["spec"]["holderIdentity"]


@asynccontextmanager
async def electors(store: LeaseStore, clock: ManualClock,
                   *names: str) -> AsyncIterator[dict[str, LeaderElector]]:
    made = {name: LeaderElector(client=store.client(name), namespace="ns", name="l",
                                identity=name, timings=TIMINGS, clock=clock) for name in names}
    async with anyio.create_task_group() as group:
        for elector in made.values():
            await group.start(elector.run)
        yield made
        group.cancel_scope.cancel()


async def settle() -> None:
    for _ in range(30):
        await anyio.lowlevel.checkpoint()


async def step(clock: ManualClock, seconds: float) -> None:
    """Advance the clock one retry period at a time, letting every elector act."""
    elapsed = 0.0
    while elapsed < seconds:
        clock.advance(TIMINGS.retry_period)
        elapsed += TIMINGS.retry_period
        await settle()


async def test_one_leads_and_the_other_stands_by() -> None:
    store, clock = LeaseStore(), ManualClock(T0)
    async with electors(store, clock, "a", "b") as made:
        await settle()
        await step(clock, 10)
        leaders = [name for name, elector in made.items() if elector.is_leader]
        assert leaders == [store.holder] and len(leaders) == 1


async def test_a_leader_cut_off_steps_down_before_its_lease_can_be_taken() -> None:
    store, clock = LeaseStore(), ManualClock(T0)
    async with electors(store, clock, "a") as first, electors(store, clock, "b") as second:
        await settle()
        assert first["a"].is_leader and not second["b"].is_leader
        store.cut.add("a")
        renewed = clock.now()
        stepped_down_at = taken_at = None
        while taken_at is None:
            await step(clock, TIMINGS.retry_period)
            if stepped_down_at is None and not first["a"].is_leader:
                stepped_down_at = clock.now()
            if second["b"].is_leader:
                taken_at = clock.now()
        assert stepped_down_at is not None
        # a stops writing by its renew deadline, strictly before b may take the lease
        assert stepped_down_at - renewed <= timedelta(seconds=TIMINGS.renew_deadline)
        assert stepped_down_at < taken_at
        assert taken_at - renewed <= timedelta(
            seconds=TIMINGS.lease_duration + 2 * TIMINGS.retry_period)
        assert store.holder == "b"


async def test_a_released_lease_is_taken_at_the_next_retry() -> None:
    store, clock = LeaseStore(), ManualClock(T0)
    async with electors(store, clock, "a") as first, electors(store, clock, "b") as second:
        await settle()
        await first["a"].release()
        assert not first["a"].is_leader and store.holder == ""
        store.cut.add("a")  # a is gone
        await step(clock, TIMINGS.retry_period)
        assert second["b"].is_leader


def test_a_renew_deadline_not_shorter_than_the_lease_is_refused() -> None:
    with pytest.raises(ValueError, match="renew deadline"):
        LeaderElector(client=LeaseStore().client("a"), namespace="ns", name="l",
                      identity="a", clock=ManualClock(T0),
                      timings=LeaseTimings(lease_duration=10, renew_deadline=10))
