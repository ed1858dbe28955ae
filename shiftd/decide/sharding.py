"""Which shard owns a key: rendezvous hashing over the shards that hold a Lease.

Every daemon computes the same answer from the same Leases: each key goes to the live shard
with the highest hash of (shard, key), so a shard that joins takes only the keys it wins
(about 1/N of them) and a shard that dies hands each of its keys to the next-best shard. A
shard counts as *established* once its Lease has been seen held for ``join_delay``: a newcomer
waits that long before it takes any key, while the shards that lose keys to it stop at once
on seeing its Lease, so no key is written by two shards at the same moment. Pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class ShardLease:
    """What a daemon knows of one shard's Lease."""

    name: str
    holder: str  # "" when free
    duration_seconds: float
    changed_at: datetime  # when this daemon saw its record change
    held_since: datetime  # when this daemon first saw the current holder holding it


def live_shards(leases: Iterable[ShardLease], *, now: datetime) -> list[ShardLease]:
    """Leases held and renewed within their duration (by the observer's clock)."""
    return [lease for lease in leases if lease.holder
            and now < lease.changed_at + timedelta(seconds=lease.duration_seconds)]


def score(shard: str, key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{shard}\0{key}".encode(), digest_size=8).digest(),
                          "big")


def owner(key: str, shards: Iterable[str]) -> str | None:
    """The shard (Lease name) that owns ``key`` among ``shards`` (None when there is none)."""
    return max(shards, key=lambda shard: score(shard, key), default=None)


def owns(key: str, *, me: str | None, leases: Mapping[str, ShardLease], now: datetime,
         join_delay: float) -> bool:
    """Whether the shard holding ``me`` may write ``key`` now: it wins the key among every
    live shard, and has itself been established for ``join_delay``."""
    if me is None:
        return False
    live = live_shards(leases.values(), now=now)
    if owner(key, (lease.name for lease in live)) != me:
        return False
    mine = leases.get(me)
    return mine is not None and now >= mine.held_since + timedelta(seconds=join_delay)
