"""Leader election on a ``coordination.k8s.io/v1`` Lease, decided as client-go decides it.

``next_lease`` looks at the Lease as last read, who we are, when we first saw its current
record (our own clock, so clocks that disagree between hosts never matter) and ``now``, and
says whether we may hold it and what to write: take it when it is free or its holder has not
renewed within its duration, renew it when it is ours, leave it otherwise. Pure: the caller
reads and writes (a replace guarded by resourceVersion, so two candidates never both win).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shiftd.decide.rollout.status import format_micro_time

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class LeaseTimings:
    """client-go's defaults: 15 s duration, 10 s renew deadline, 2 s retry period."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    holder: str
    duration_seconds: int
    acquire_time: str | None
    renew_time: str | None
    transitions: int

    @classmethod
    def of(cls, lease: Obj | None) -> LeaseRecord | None:
        if lease is None:
            return None
        spec = lease.get("spec") or {}
        return cls(holder=str(spec.get("holderIdentity") or ""),
                   duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
                   acquire_time=spec.get("acquireTime"), renew_time=spec.get("renewTime"),
                   transitions=int(spec.get("leaseTransitions") or 0))


def expired(record: LeaseRecord, *, observed_at: datetime, now: datetime) -> bool:
    """Whether the holder let the lease lapse: it is free, or its record has not changed for
    its duration by our clock."""
    if not record.holder:
        return True
    return now >= observed_at + timedelta(seconds=record.duration_seconds)


def next_lease(lease: Obj | None, *, identity: str, observed_at: datetime, now: datetime,
               timings: LeaseTimings) -> Obj | None:
    """The spec to write to hold the Lease now, or ``None`` when another holder keeps it."""
    record = LeaseRecord.of(lease)
    stamp = format_micro_time(now)
    duration = math.ceil(timings.lease_duration)
    if record is not None and record.holder == identity:
        return {"holderIdentity": identity, "leaseDurationSeconds": duration,
                "acquireTime": record.acquire_time or stamp, "renewTime": stamp,
                "leaseTransitions": record.transitions}
    if record is not None and not expired(record, observed_at=observed_at, now=now):
        return None
    transitions = 0 if record is None else record.transitions + (1 if record.holder else 0)
    return {"holderIdentity": identity, "leaseDurationSeconds": duration,
            "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": transitions}


def released(lease: Obj) -> Obj:
    """The spec an orderly leader writes on its way out, so a standby takes over at once
    (client-go's ReleaseOnCancel: no holder, a one-second duration)."""
    spec = dict(lease.get("spec") or {})
    spec.update(holderIdentity="", leaseDurationSeconds=1)
    return spec
