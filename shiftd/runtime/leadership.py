"""Leadership: one daemon writes; the others keep warm caches and wait.

``LeaderElector.run`` campaigns for a Lease every retry period (reads it, asks
``next_lease`` whether it may hold it, replaces it guarded by resourceVersion). Once it holds
it, it renews every retry period; if no renewal has succeeded for the renew deadline (shorter
than the lease duration, so before anyone else may take it) it steps down at once: the
lifecycle cancels every worker and writer, so nothing is written after the lease is lost.
On an orderly stop the leader releases the Lease so a standby takes over without waiting out
the duration. Time is the injected clock's. ``AlwaysLeader`` is the elector of a daemon
without leader election.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import anyio
from anyio.abc import TaskStatus

from shiftd.decide.leadership import LeaseTimings, next_lease, released
from shiftd.kube.errors import Conflict, KubeError, NotFound
from shiftd.kube.resources import LEASE, ResourceKind
from shiftd.runtime.clock import Clock

logger = logging.getLogger(__name__)

Obj = dict[str, Any]


class LeaseClient(Protocol):
    async def get(self, kind: ResourceKind, namespace: str | None, name: str) -> Obj: ...

    async def create(self, kind: ResourceKind, namespace: str | None, body: Obj) -> Obj: ...

    async def replace(self, kind: ResourceKind, namespace: str | None, name: str,
                      body: Obj) -> Obj: ...


class Elector(Protocol):
    @property
    def is_leader(self) -> bool: ...

    @property
    def held(self) -> str | None:
        """The name of the Lease held now (None without one)."""
        ...

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        ...

    async def wait_elected(self) -> None: ...

    async def wait_lost(self) -> None: ...

    async def release(self) -> None: ...


class AlwaysLeader:
    """No leader election: this daemon is the only writer from the start."""

    is_leader = True
    held = None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    async def wait_elected(self) -> None:
        await anyio.lowlevel.checkpoint()

    async def wait_lost(self) -> None:
        await anyio.sleep_forever()

    async def release(self) -> None:
        await anyio.lowlevel.checkpoint()


class LeaderElector:
    """Holds one Lease: ``name``, or (``names``, for shards) the first of them it can take."""

    def __init__(self, *, client: LeaseClient, namespace: str, identity: str,
                 timings: LeaseTimings, clock: Clock, name: str | None = None,
                 names: Sequence[str] = (), labels: dict[str, str] | None = None,
                 on_change: Callable[[bool], None] = lambda leader: None) -> None:
        if timings.renew_deadline >= timings.lease_duration:
            raise ValueError("the renew deadline must be shorter than the lease duration")
        self._names = tuple(names) or ((name,) if name else ())
        if not self._names:
            raise ValueError("a lease name is needed")
        self._client = client
        self._namespace = self.namespace = namespace
        self._name = self._names[0]
        self._labels = dict(labels or {})
        self.identity = identity
        self._timings = timings
        self._clock = clock
        self._on_change = on_change
        self._elected = anyio.Event()
        self._lost = anyio.Event()
        # per lease: the record as last seen, and when it was first seen so, by our clock
        self._seen: dict[str, tuple[tuple[Any, ...], datetime]] = {}
        self._renewed_at: datetime | None = None
        self._lease: Obj | None = None

    @property
    def is_leader(self) -> bool:
        return self._elected.is_set() and not self._lost.is_set()

    @property
    def held(self) -> str | None:
        """The name of the Lease held now."""
        return self._name if self.is_leader else None

    async def wait_elected(self) -> None:
        await self._elected.wait()

    async def wait_lost(self) -> None:
        await self._lost.wait()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Campaign, then renew, until cancelled; a lost lease means campaigning again."""
        task_status.started()
        while True:
            while not await self._try_hold_any():
                await self._sleep(self._timings.retry_period)
            self._become(leader=True)
            while await self._renew_within_deadline():
                await self._sleep(self._timings.retry_period)
            self._become(leader=False)

    async def _renew_within_deadline(self) -> bool:
        """One renewal, retried until it succeeds or the renew deadline has passed since the
        last success (then the lease is given up, before anyone else may take it)."""
        while True:
            if await self._try_hold():
                return True
            assert self._renewed_at is not None
            deadline = self._renewed_at + timedelta(seconds=self._timings.renew_deadline)
            if self._clock.now() >= deadline:
                logger.warning("could not renew the lease %s/%s within %.0fs: stepping down",
                               self._namespace, self._name, self._timings.renew_deadline)
                return False
            await self._sleep(self._timings.retry_period)

    def _become(self, *, leader: bool) -> None:
        if leader:
            logger.info("leading: holding lease %s/%s as %s", self._namespace, self._name,
                        self.identity)
            self._lost = anyio.Event()
            self._elected.set()
        else:
            self._lost.set()
            self._elected = anyio.Event()
        self._on_change(leader)

    async def _try_hold_any(self) -> bool:
        """Campaign for each Lease in turn, keeping the first one won."""
        for name in self._names:
            self._name = name
            if await self._try_hold():
                return True
        return False

    async def _try_hold(self) -> bool:
        """Read the Lease and write it if ``next_lease`` says we may hold it."""
        now = self._clock.now()
        try:
            lease = await self._client.get(LEASE, self._namespace, self._name)
        except NotFound:
            lease = None
        except KubeError as error:
            logger.info("reading the lease failed: %s", error)
            return False
        observed_at = self._note(lease, now)
        spec = next_lease(lease, identity=self.identity, observed_at=observed_at,
                          now=now, timings=self._timings)
        if spec is None:
            return False
        try:
            self._lease = await self._write(lease, spec)
        except (Conflict, KubeError) as error:
            logger.info("writing the lease failed: %s", error)
            return False
        self._renewed_at = now
        return True

    def _note(self, lease: Obj | None, now: datetime) -> datetime:
        """Remember when the Lease's record last changed, by our clock; returns that time."""
        spec = (lease or {}).get("spec") or {}
        record = (spec.get("holderIdentity"), spec.get("renewTime"),
                  spec.get("leaseTransitions"))
        seen = self._seen.get(self._name)
        if seen is None or seen[0] != record:
            seen = self._seen[self._name] = (record, now)
        return seen[1]

    async def _write(self, lease: Obj | None, spec: Obj) -> Obj:
        if lease is None:
            return await self._client.create(LEASE, self._namespace, {
                "apiVersion": LEASE.api_version, "kind": LEASE.kind,
                "metadata": {"name": self._name, "namespace": self._namespace,
                             **({"labels": self._labels} if self._labels else {})},
                "spec": spec})
        body = {**lease, "spec": spec}
        return await self._client.replace(LEASE, self._namespace, self._name, body)

    async def release(self) -> None:
        """Give the lease up (orderly stop), so a standby need not wait out its duration."""
        if not self.is_leader or self._lease is None:
            return
        try:
            await self._client.replace(LEASE, self._namespace, self._name,
                                       {**self._lease, "spec": released(self._lease)})
            logger.info("released the lease %s/%s", self._namespace, self._name)
        except KubeError as error:
            logger.warning("releasing the lease failed: %s", error)
        self._become(leader=False)

    async def _sleep(self, seconds: float) -> None:
        await self._clock.sleep_until(self._clock.now() + timedelta(seconds=seconds))
