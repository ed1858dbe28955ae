"""The Flagger Canary controller: one Canary key in, its step decided by the pure core
(``shiftd.decide.flagger``), the writes applied, an ``Outcome`` back to the engine.

``register`` declares what it reads: Canaries (optional: watched once the API server serves
``flagger.app/v1beta1``, so a cluster without Flagger's CRDs runs Rollouts alone), the
Deployments, Services, DestinationRules and VirtualService a Canary owns (their changes wake
their Canary through the owner reference), the target Deployment (through the reference
index) and MetricTemplates. ``reconcile`` observes from the caches, calls ``advance`` (or
``finalize`` for a Canary being deleted), measures the checks when the step asks for them
and decides again with the verdict, then applies the step through ``CanaryWrites``. A
conflict re-reads and retries the key.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson

from shiftd.controllers.canary_checks import CanaryChecks
from shiftd.controllers.canary_writes import CanaryWrites
from shiftd.decide.flagger import status as st
from shiftd.decide.flagger.actions import CanaryEvent, Step
from shiftd.decide.flagger.finalize import finalize, finalizer_change
from shiftd.decide.flagger.machine import advance
from shiftd.decide.flagger.observed import Observed, Verdict
from shiftd.decide.flagger.routes import observe_routes, service_names
from shiftd.decide.flagger.workloads import primary_name
from shiftd.kube.errors import Conflict, Invalid, KubeError, NotFound
from shiftd.kube.resources import (
    CANARY,
    DEPLOYMENT,
    DESTINATION_RULE,
    HORIZONTAL_POD_AUTOSCALER,
    METRIC_TEMPLATE,
    SERVICE,
    VIRTUAL_SERVICE,
)
from shiftd.model.flagger.canary import Canary, InvalidCanaryError, parse_canary
from shiftd.runtime.caches import Caches, Ref, controller_key
from shiftd.runtime.clock import Clock
from shiftd.runtime.engine import DONE, Outcome
from shiftd.runtime.flagger_telemetry import (
    ANALYSIS_COMPLETED,
    ANALYSIS_SKIPPED,
    FlaggerMetrics,
    deployment_strategy,
)
from shiftd.runtime.keys import ObjectKey, key_of

logger = logging.getLogger(__name__)

KIND = CANARY.kind
JsonObject = dict[str, Any]


class CanaryController:
    def __init__(self, *, caches: Caches, writes: CanaryWrites, checks: CanaryChecks,
                 clock: Clock, metrics: FlaggerMetrics, workers: int) -> None:
        self.kind = KIND
        self.workers = workers
        self._caches = caches
        self._writes = writes
        self._checks = checks
        self._clock = clock
        self._metrics = metrics
        self._targets: dict[ObjectKey, str] = {}  # the target each Canary's metrics name
        # checks answered for a step whose writes then conflicted: reused when the step is
        # decided again from the same Canary (no webhook called twice for one step)
        self._answered: dict[ObjectKey, tuple[str, dict[str, Verdict]]] = {}

    # -- registration ------------------------------------------------------------------------
    def register(self, caches: Caches) -> None:
        """Declare the kinds this controller reads; all optional, so readiness never waits
        for Flagger's kinds, and the workloads' kinds only watched where Canaries are
        served."""
        caches.watch(CANARY, optional=True, on_change=lambda event, obj: (key_of(KIND, obj),))
        caches.watch(METRIC_TEMPLATE, optional=True)
        for kind in (DEPLOYMENT, SERVICE, VIRTUAL_SERVICE, DESTINATION_RULE,
                     HORIZONTAL_POD_AUTOSCALER):
            # Deployments and HPAs only on a cluster with Flagger's CRDs
            caches.watch(kind, optional=True, on_change=self._keys_of_owned, requires=CANARY)

    def _keys_of_owned(self, event_type: str, obj: JsonObject) -> Iterable[ObjectKey]:
        owner = controller_key(obj)
        if owner is not None and owner.kind == KIND:
            return (owner,)
        # a VirtualService found in place is owned by the Canary, but not as its controller
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
            if ref.get("kind") == KIND and ref.get("apiVersion", "").startswith("flagger.app/"):
                return (ObjectKey(KIND, str(obj["metadata"].get("namespace", "")),
                                  str(ref.get("name"))),)
        return ()

    def resync_keys(self) -> Iterable[ObjectKey]:
        if not self._caches.served(CANARY):
            return []
        canaries = self._caches.items(CANARY)
        self._metrics.set_totals(Counter(str(obj["metadata"].get("namespace", ""))
                                         for obj in canaries))
        return [key_of(KIND, obj) for obj in canaries]

    def shard_of(self, key: ObjectKey) -> str:
        return f"canary:{key.path}"

    # -- reconciling -------------------------------------------------------------------------
    async def reconcile(self, key: ObjectKey) -> Outcome:
        obj = self._caches.get(CANARY, key.namespace, key.name)
        if obj is None:
            self._caches.set_references(key, ())
            self._answered.pop(key, None)
            target = self._targets.pop(key, None)
            if target is not None:
                self._metrics.forget(target=target, namespace=key.namespace)
            return DONE
        try:
            canary = parse_canary(obj)
        except InvalidCanaryError as error:
            await self._writes.apply(obj, _placeholder(obj), Step(events=(
                CanaryEvent(f"invalid Canary: {error}", warning=True),)))
            return DONE
        self._caches.set_references(key, self._references(canary))
        if not all(self._caches.listed(kind) or not self._caches.served(kind)
                   for kind in (DEPLOYMENT, VIRTUAL_SERVICE)):
            # not listed yet, so a missing target would be no news: look again shortly
            return Outcome(failed=True)
        started = time.perf_counter()
        point, (asked_at, answers) = _decision_point(obj), self._answered.pop(key, ("", {}))
        answers = answers if asked_at == point else {}
        try:
            step = await self._decide(canary, answers)
            await self._writes.apply(obj, canary, step)
            await self._after(obj, canary, step)
            self._observe_metrics(key, canary, step, seconds=time.perf_counter() - started)
        except InvalidCanaryError as error:
            await self._writes.apply(obj, canary, Step(events=(
                CanaryEvent(str(error), warning=True),)))
            return DONE
        except (Conflict, NotFound, Invalid) as error:
            self._answered[key] = (point, answers)
            logger.info("canary %s: replanning after a conflict: %s", key.path, error,
                        extra={"canary": key.path})
            return Outcome(failed=True, retry_now=True)
        except KubeError as error:
            logger.warning("reconcile of canary %s failed: %s", key.path, error,
                           extra={"canary": key.path})
            return Outcome(failed=True)
        return Outcome(requeue_at=step.requeue_at, again=step.again)

    async def _decide(self, canary: Canary, answers: dict[str, Verdict]) -> Step:
        """The step, asking the checks it needs (``answers``: those already given for this
        step, filled with those asked now)."""
        now = self._clock.now()
        observed = self._observe(canary)
        if canary.deleting:
            return finalize(canary, observed, now=now)
        membership = finalizer_change(canary)
        step = advance(canary, dataclasses.replace(observed, checks=dict(answers)), now=now)
        while step.needs_checks is not None and step.needs_checks not in answers:
            answers[step.needs_checks] = await self._checks.run(canary, step.needs_checks)
            step = advance(canary, dataclasses.replace(observed, checks=dict(answers)),
                           now=now)
        if (canary.phase in (st.INITIALIZING, st.WAITING) and not canary.spec.skip_analysis
                and canary.spec.analysis.metrics):
            available = await self._checks.providers_available(canary)
            step = dataclasses.replace(step, events=(available, *step.events))
        return dataclasses.replace(step, finalizer=membership.finalizer)

    async def _after(self, obj: JsonObject, canary: Canary, step: Step) -> None:
        """What follows the writes: post-rollout hooks when the Canary ended, Events to the
        event hooks."""
        events = step.events
        phase = (step.status or {}).get("phase")
        if phase in (st.SUCCEEDED, st.FAILED) and phase != canary.phase:
            ended = await self._checks.post_rollout(canary, str(phase))
            if ended:
                await self._writes.apply(obj, canary, Step(events=ended))
                events = events + ended
        await self._checks.notify(canary, events,
                                  timestamp_ms=int(self._clock.now().timestamp() * 1000))

    def _observe_metrics(self, key: ObjectKey, canary: Canary, step: Step, *,
                         seconds: float) -> None:
        """Flagger's metrics after a reconcile: status, weights, duration, outcomes."""
        target, namespace = canary.spec.target_ref.name, canary.namespace
        self._targets[key] = target
        status = {**canary.status, **(step.status or {})}
        phase = str(status.get("phase") or "")
        self._metrics.set_status(target=target, namespace=namespace, phase=phase)
        vs = self._caches.get(VIRTUAL_SERVICE, namespace, service_names(canary)[0])
        routes = observe_routes(canary, vs)
        self._metrics.set_weight(target=target, namespace=namespace, primary=routes.primary,
                                 canary=routes.canary)
        self._metrics.observe_duration(target=target, namespace=namespace, seconds=seconds)
        if step.status is None or step.status.get("phase") == canary.phase:
            return
        strategy = deployment_strategy(canary.spec.analysis.model_dump(by_alias=True))
        skipped = ANALYSIS_SKIPPED if canary.spec.skip_analysis else ANALYSIS_COMPLETED
        if phase == st.SUCCEEDED:
            self._metrics.count_success(target=target, namespace=namespace, strategy=strategy,
                                        analysis_status=skipped)
        elif phase == st.FAILED:
            self._metrics.count_failure(target=target, namespace=namespace, strategy=strategy,
                                        analysis_status=skipped)

    def _observe(self, canary: Canary) -> Observed:
        namespace, get = canary.namespace, self._caches.get
        apex, primary, canary_service = service_names(canary)
        hpa = str((canary.spec.autoscaler_ref or {}).get("name") or "")
        return Observed(
            target=get(DEPLOYMENT, namespace, canary.spec.target_ref.name),
            primary=get(DEPLOYMENT, namespace, primary_name(canary)),
            virtual_service=get(VIRTUAL_SERVICE, namespace, apex),
            services={name: get(SERVICE, namespace, name)
                      for name in (apex, primary, canary_service)},
            destination_rules={name: get(DESTINATION_RULE, namespace, name)
                               for name in (primary, canary_service)},
            autoscaler=get(HORIZONTAL_POD_AUTOSCALER, namespace, hpa) if hpa else None,
            primary_autoscaler=get(HORIZONTAL_POD_AUTOSCALER, namespace, f"{hpa}-primary")
            if hpa else None,
        )

    def _references(self, canary: Canary) -> list[Ref]:
        namespace = canary.namespace
        refs: list[Ref] = [(DEPLOYMENT, namespace, canary.spec.target_ref.name),
                           (VIRTUAL_SERVICE, namespace, service_names(canary)[0])]
        hpa = (canary.spec.autoscaler_ref or {}).get("name")
        if hpa:
            refs.append((HORIZONTAL_POD_AUTOSCALER, namespace, str(hpa)))
        for metric in canary.spec.analysis.metrics:
            if metric.template_ref is not None:
                refs.append((METRIC_TEMPLATE, metric.template_ref.namespace or namespace,
                             metric.template_ref.name))
        return refs


def _decision_point(obj: JsonObject) -> str:
    """What a step's checks were asked about: the Canary's spec generation and status (the
    same after a conflict on another object or on the Canary's metadata alone)."""
    meta = obj.get("metadata") or {}
    return orjson.dumps([meta.get("generation"), obj.get("status")],
                        option=orjson.OPT_SORT_KEYS).decode()


def _placeholder(obj: JsonObject) -> Canary:
    """Enough of a Canary to record an Event about one that does not parse."""
    meta = obj.get("metadata") or {}
    return Canary.model_construct(name=meta.get("name", ""), namespace=meta.get("namespace", ""),
                                  uid=meta.get("uid", ""))
