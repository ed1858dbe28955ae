"""The AnalysisRun controller: takes AnalysisRuns' measurements on schedule and judges them.

It registers on the engine for AnalysisRun keys: every AnalysisRun change (and every wake-up
its outcome asks for) queues the run. Reconciling a run: parse its metrics, ask the pure state
machine (``shiftd.decide.analysis.machine``) which are due on the injected clock, measure those
concurrently (bounded by ``concurrency``; each provider call under its own deadline; transient
failures retried a couple of times), judge each value with the condition language, assess the
run and write its status (guarded by resourceVersion), then ask the engine to wake it when the
next measurement is due. Measurements already taken are in the run's status, so a restarted
daemon repeats none of them. The Rollout side reads the run's phase from its cache
(``shiftd.decide.rollout.analysis``).
"""

from __future__ import annotations

import base64
import copy
import logging
from collections.abc import Callable, Mapping
from typing import Any

import anyio

from shiftd.decide.analysis.machine import (
    COMPLETED,
    ERROR,
    Evaluator,
    advance_run,
    due_metrics,
    next_measurement_at,
)
from shiftd.decide.rollout.status import format_time, merge_patch_diff
from shiftd.kube.client import KubeClient
from shiftd.kube.errors import ApiError, Conflict, KubeError, NotFound
from shiftd.kube.resources import ANALYSIS_RUN, ResourceKind
from shiftd.model.argo.analysis import (
    Metric,
    parse_metrics,
    substitute_all,
)
from shiftd.model.argo.rollout import InvalidSpecError
from shiftd.providers.base import ProviderError, ProviderSettings
from shiftd.providers.measure import ProviderFactory, take_measurement
from shiftd.providers.registry import provider_for
from shiftd.runtime.caches import Caches, controller_key
from shiftd.runtime.clock import Clock
from shiftd.runtime.engine import DONE, Outcome
from shiftd.runtime.keys import ObjectKey, key_of
from shiftd.runtime.telemetry import Telemetry

logger = logging.getLogger(__name__)

SECRET = ResourceKind("", "v1", "Secret", "secrets", status_subresource=False)
KIND = ANALYSIS_RUN.kind


class AnalysisController:
    def __init__(
        self,
        *,
        client: KubeClient,
        read: Callable[[ResourceKind, str, str], dict[str, Any] | None],
        clock: Clock,
        telemetry: Telemetry,
        evaluate: Evaluator,
        provider_settings: ProviderSettings,
        concurrency: int = 32,
        measurement_timeout: float = 60.0,
        retries: int = 3,
        providers: ProviderFactory = provider_for,
        ours: Callable[[dict[str, Any]], bool] = lambda run: True,
        remember: Callable[[dict[str, Any]], None] = lambda run: None,
    ) -> None:
        self._client = client
        self._read = read
        self._clock = clock
        self._telemetry = telemetry
        self._evaluate = evaluate
        self._provider_settings = provider_settings
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._timeout = measurement_timeout
        self._retries = retries
        self._providers = providers
        self._ours = ours
        self._remember = remember
        self.kind = KIND
        self.workers = max(1, min(concurrency, 64))

    def register(self, caches: Caches) -> None:
        """AnalysisRuns, each change queueing the run itself."""
        caches.watch(ANALYSIS_RUN, on_change=lambda event_type, run: (
            () if event_type == "DELETED" else (key_of(KIND, run),)))

    def resync_keys(self) -> list[ObjectKey]:
        return []  # a run's own wake-ups are its timers; a missed event is caught by them

    def shard_of(self, key: ObjectKey) -> str:
        """A run belongs to the shard of the Rollout that controls it."""
        run = self._read(ANALYSIS_RUN, key.namespace, key.name)
        owner = controller_key(run) if run is not None else None
        return owner.path if owner is not None else key.path

    # -- one run ------------------------------------------------------------------------
    async def reconcile(self, key: ObjectKey) -> Outcome:
        namespace, name = key.namespace, key.name
        run = self._read(ANALYSIS_RUN, namespace, name)
        if run is None or not self._ours(run):
            # gone, or another controller's (another instanceId, or Argo Rollouts itself)
            self._telemetry.forget_analysis_run(namespace, name)
            return DONE
        spec = run.get("spec") or {}
        old_status = run.get("status") or {}
        status = copy.deepcopy(old_status)
        now = self._clock.now()
        if status.get("phase") in COMPLETED:
            self._observe(namespace, name, spec, status)
            return DONE
        status.setdefault("startedAt", format_time(now))
        try:
            metrics = parse_metrics(spec.get("metrics") or [], path="spec.metrics")
        except InvalidSpecError as error:
            status.update(phase=ERROR, message=str(error), completedAt=format_time(now))
            return await self._write(run, old_status, status) or DONE
        by_name = {m.get("name"): m for m in spec.get("metrics") or []}
        due = due_metrics(spec=spec, status=status, metrics=metrics, now=now)
        measured: dict[str, dict[str, Any]] = {}
        if due:
            async with anyio.create_task_group() as group:
                for metric in due:
                    group.start_soon(self._measure_into, measured, run, metric,
                                     by_name[metric.name])
        assessment = advance_run(spec=spec, status=status, metrics=metrics, measured=measured)
        if assessment.message:
            status["message"] = assessment.message
        else:
            status.pop("message", None)
        if assessment.phase in COMPLETED:
            status.setdefault("completedAt", format_time(self._clock.now()))
        failed = await self._write(run, old_status, status)
        self._observe(namespace, name, spec, status)
        return failed or Outcome(requeue_at=next_measurement_at(
            spec=spec, status=status, metrics=metrics, now=now))

    async def _write(self, run: dict[str, Any], old: dict[str, Any],
                     new: dict[str, Any]) -> Outcome | None:
        """Patch the run's status; ``None`` when written (or nothing to write), else the
        outcome the failure asks for."""
        metadata = run["metadata"]
        key = f"{metadata['namespace']}/{metadata['name']}"
        patch = merge_patch_diff(old, new)
        if not patch:
            return None
        body = {"metadata": {"resourceVersion": metadata.get("resourceVersion")},
                "status": patch}
        try:
            written = await self._client.patch(ANALYSIS_RUN, metadata["namespace"],
                                               metadata["name"], body, patch_type="merge")
        except (Conflict, NotFound):
            # changed under us: look again (the watch brings the new copy)
            return Outcome(failed=True, retry_now=True)
        except KubeError as error:
            logger.warning("writing %s failed: %s", key, error, extra={"analysisrun": key})
            return Outcome(failed=True)
        # Into the cache at once, as the Rollout writers do: a run queued again before the
        # watch brings this version must not be measured again from the older copy.
        self._remember(written)
        return None

    # -- one measurement ------------------------------------------------------------------
    async def _measure_into(self, into: dict[str, dict[str, Any]], run: dict[str, Any],
                            metric: Metric, raw_metric: Mapping[str, Any]) -> None:
        into[metric.name] = await self.measure(run, metric, raw_metric)

    async def measure(self, run: dict[str, Any], metric: Metric,
                      raw_metric: Mapping[str, Any]) -> dict[str, Any]:
        """One measurement, as Argo stores it; never raises for provider trouble."""
        taken = await take_measurement(
            metric, lambda: self._with_secrets(run, raw_metric), providers=self._providers,
            settings=self._provider_settings, now=self._clock.now, evaluate=self._evaluate,
            time_limit=self._timeout, retries=self._retries, limiter=self._limiter)
        if taken.provider_failed:
            self._telemetry.count_provider_error(taken.provider)
        self._telemetry.observe_measurement(taken.provider, taken.seconds)
        return taken.measurement

    async def _with_secrets(self, run: dict[str, Any],
                            raw_metric: Mapping[str, Any]) -> dict[str, Any]:
        """Fill ``{{args.x}}`` from secretKeyRef args (read now, never stored in the run)."""
        namespace = run["metadata"]["namespace"]
        values: dict[str, str] = {}
        for arg in (run.get("spec") or {}).get("args") or []:
            if "value" in arg:
                values[str(arg["name"])] = str(arg["value"])
                continue
            ref = (arg.get("valueFrom") or {}).get("secretKeyRef") or {}
            if not ref:
                continue
            try:
                secret = await self._client.get(SECRET, namespace, str(ref.get("name")))
            except ApiError as error:
                raise ProviderError(f"args.{arg['name']}: secret {ref.get('name')!r}: "
                                    f"{error.message}", transient=False) from None
            data = (secret.get("data") or {}).get(str(ref.get("key")))
            if data is None:
                raise ProviderError(f"args.{arg['name']}: secret {ref.get('name')!r} has no "
                                    f"key {ref.get('key')!r}", transient=False)
            values[str(arg["name"])] = base64.b64decode(data).decode()
        return dict(substitute_all(dict(raw_metric), values))

    def _observe(self, namespace: str, name: str, spec: Mapping[str, Any],
                 status: Mapping[str, Any]) -> None:
        kinds = {str(m.get("name")): next(iter(m.get("provider") or {}), "")
                 for m in spec.get("metrics") or []}
        self._telemetry.observe_analysis_run(
            namespace=namespace, name=name, phase=str(status.get("phase") or "Pending"),
            metrics={str(r.get("name")): (kinds.get(str(r.get("name")), ""),
                                          str(r.get("phase") or "Pending"))
                     for r in status.get("metricResults") or []})



