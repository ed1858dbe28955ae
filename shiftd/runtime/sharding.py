"""Sharding: several daemons split the keys, each writing only the keys its shard owns.

Each daemon holds one of the ``shiftd-shard-<i>`` Leases (``LeaderElector`` with several
names) and watches all of them here. ``owns`` answers, for a key's shard text (a Rollout's
``namespace/name``), whether this daemon may write it now (``shiftd.decide.sharding``:
rendezvous hashing over the live shards, a newcomer established only after ``join_delay``).
Membership is judged again every ``recheck`` seconds on the injected clock as well as on every
Lease event, since a dead shard's Lease lapses without any event; each change calls
``on_change`` (the engine's resync), so keys that moved are picked up by their new owner.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import anyio
from anyio.abc import TaskStatus

from shiftd.decide.sharding import ShardLease, live_shards, owner, owns
from shiftd.kube.informer import Informer, ListWatchClient
from shiftd.kube.resources import LEASE
from shiftd.runtime.clock import Clock

logger = logging.getLogger(__name__)

SHARD_LABEL = "shiftd.io/shard"


def shard_lease_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{index}" for index in range(count)]


class ShardRing:
    def __init__(self, *, client: ListWatchClient, namespace: str, names: Sequence[str],
                 clock: Clock, join_delay: float, recheck: float,
                 held: Callable[[], str | None]) -> None:
        self._names = frozenset(names)  # this deployment's shard Leases (others are ignored)
        self._clock = clock
        self._join_delay = join_delay
        self._recheck = recheck
        self._held = held
        self._leases: dict[str, ShardLease] = {}
        self._informer = Informer(client, LEASE, namespaces=[namespace],
                                  label_selector=f"{SHARD_LABEL}=true",
                                  on_change=self._seen)
        self._membership: tuple[Any, ...] = ()

    def _seen(self, event_type: str, lease: dict[str, Any]) -> None:
        name = str((lease.get("metadata") or {}).get("name"))
        if name not in self._names:
            return
        if event_type == "DELETED":
            self._leases.pop(name, None)
            return
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        now = self._clock.now()
        previous = self._leases.get(name)
        self._leases[name] = ShardLease(
            name=name, holder=holder,
            duration_seconds=float(spec.get("leaseDurationSeconds") or 0),
            changed_at=now,
            held_since=previous.held_since if previous is not None
            and previous.holder == holder else now)

    def owns(self, key: str) -> bool:
        return owns(key, me=self._held(), leases=self._leases, now=self._clock.now(),
                    join_delay=self._join_delay)

    def owner_of(self, key: str) -> str | None:
        return owner(key, (lease.name for lease in
                           live_shards(self._leases.values(), now=self._clock.now())))

    def _current_membership(self) -> tuple[Any, ...]:
        now = self._clock.now()
        live = live_shards(self._leases.values(), now=now)
        established = [lease.name for lease in live
                       if now >= lease.held_since + timedelta(seconds=self._join_delay)]
        return (self._held(), tuple(sorted(lease.name for lease in live)), tuple(established))

    async def run(self, *, on_change: Callable[[], None],
                  task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Watch the shard Leases; call ``on_change`` whenever who owns what may change."""
        async with anyio.create_task_group() as group:
            await group.start(self._informer.run)
            task_status.started()
            while True:
                membership = self._current_membership()
                if membership != self._membership:
                    logger.info("shards: holding %s; live %s; established %s", *membership)
                    self._membership = membership
                    on_change()
                await self._clock.sleep_until(
                    self._clock.now() + timedelta(seconds=self._recheck))
