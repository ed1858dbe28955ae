"""``shard``: which shard of a sharded shiftd owns a Rollout, read from the shard Leases.

The daemons decide ownership by rendezvous hashing over the shard Leases they see held
(``shiftd.decide.sharding``); this command applies the same rule to the Leases as the API
server has them now, a Lease counting as live when its ``renewTime`` is within its duration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shiftd.decide.rollout.observed import parse_time
from shiftd.decide.sharding import ShardLease, live_shards, owner

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ownership:
    key: str
    shard: str | None  # the Lease name, None when no live shard exists
    holder: str


def _shard_lease(lease: Obj) -> ShardLease:
    spec = lease.get("spec") or {}
    when = parse_time(str(spec.get("renewTime"))) or datetime.min.replace(tzinfo=UTC)
    return ShardLease(name=str(lease["metadata"]["name"]),
                      holder=str(spec.get("holderIdentity") or ""),
                      duration_seconds=float(spec.get("leaseDurationSeconds") or 0),
                      changed_at=when, held_since=when)


def owner_of(key: str, leases: Sequence[Obj], *, prefix: str, now: datetime) -> Ownership:
    """The live shard among the Leases named ``prefix<i>`` that owns ``key``."""
    shards = [_shard_lease(lease) for lease in leases
              if str(lease["metadata"]["name"]).startswith(prefix)]
    live = {shard.name: shard for shard in live_shards(shards, now=now)}
    name = owner(key, live)
    return Ownership(key=key, shard=name, holder=live[name].holder if name else "")
