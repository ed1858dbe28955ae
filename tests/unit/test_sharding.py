"""Sharding decisions: rendezvous ownership over live shard Leases — a joining shard takes
only its share, a dead shard's keys spread over the others, a lapsed Lease is not live, and a
newcomer waits out the join delay before it writes anything."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from shiftd.decide.sharding import ShardLease, live_shards, owner, owns

T0 = datetime(2026, 12, 1, tzinfo=UTC)
KEYS = [f"shop/rollout-{index}" for index in range(3000)]


def lease(name: str, *, holder: str = "x", changed: float = 0, since: float = 0) -> ShardLease:
    return ShardLease(name=name, holder=holder, duration_seconds=15,
                      changed_at=T0 + timedelta(seconds=changed),
                      held_since=T0 + timedelta(seconds=since))


def test_keys_spread_evenly_over_the_shards() -> None:
    counts = Counter(owner(key, ["s0", "s1", "s2"]) for key in KEYS)
    assert set(counts) == {"s0", "s1", "s2"}
    assert all(800 < count < 1200 for count in counts.values())


def test_a_joining_shard_takes_only_keys_from_the_others_and_about_its_share() -> None:
    before = {key: owner(key, ["s0", "s1", "s2"]) for key in KEYS}
    after = {key: owner(key, ["s0", "s1", "s2", "s3"]) for key in KEYS}
    moved = [key for key in KEYS if before[key] != after[key]]
    assert all(after[key] == "s3" for key in moved)  # nothing moves between old shards
    assert 600 < len(moved) < 900


def test_a_dead_shards_keys_and_only_those_move() -> None:
    before = {key: owner(key, ["s0", "s1", "s2"]) for key in KEYS}
    after = {key: owner(key, ["s0", "s2"]) for key in KEYS}
    assert [k for k in KEYS if before[k] != after[k]] == [k for k in KEYS if before[k] == "s1"]


def test_a_lease_not_renewed_within_its_duration_is_not_live() -> None:
    leases = [lease("s0", changed=0), lease("s1", changed=10), lease("s2", holder="")]
    names = [shard.name for shard in live_shards(leases, now=T0 + timedelta(seconds=15))]
    assert names == ["s1"]


def test_a_newcomer_writes_nothing_before_the_join_delay_while_the_others_stop_at_once(
) -> None:
    now = T0 + timedelta(seconds=100)
    old = {"s0": lease("s0", changed=99, since=0)}
    joined = {**old, "s1": lease("s1", changed=99.5, since=99.5)}
    theirs = [key for key in KEYS if owner(key, ["s0", "s1"]) == "s1"]
    key = theirs[0]
    assert owns(key, me="s0", leases=old, now=now, join_delay=2)
    assert not owns(key, me="s0", leases=joined, now=now, join_delay=2)  # s0 stops at once
    assert not owns(key, me="s1", leases=joined, now=now, join_delay=2)  # s1 waits
    assert owns(key, me="s1", leases=joined, now=now + timedelta(seconds=1.5), join_delay=2)


def test_a_daemon_holding_no_shard_owns_nothing() -> None:
    assert not owns(KEYS[0], me=None, leases={"s0": lease("s0")}, now=T0, join_delay=0)
