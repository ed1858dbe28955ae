"""Taking one measurement and judging it: the step the daemon and ``shiftctl analyze`` share.

``take_measurement`` renders the metric (the caller says how: the daemon reads secret args
then, ``shiftctl analyze`` has every arg already), builds its provider, calls it under one
deadline (transient failures retried a few times), and judges the value with the metric's
success/failure conditions (``shiftd.decide.analysis.machine.measurement_phase``). The result is the
measurement as Argo stores it in ``status.metricResults[].measurements[]``, timestamped by the
clock it is given — the daemon's clock, or the moment a backtest replays. Provider trouble
never raises: it becomes an Error measurement with the message. Counting it (telemetry) is the
caller's business, so this module knows nothing of the daemon.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import anyio
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from shiftd.decide.analysis.machine import ERROR, Evaluator, measurement_phase
from shiftd.decide.rollout.status import format_time
from shiftd.model.argo.analysis import Metric
from shiftd.model.argo.rollout import InvalidSpecError
from shiftd.providers.base import Clock, MetricProvider, ProviderError, ProviderSettings

__all__ = ["ProviderFactory", "Taken", "take_measurement"]

ProviderFactory = Callable[..., MetricProvider]
"""Called as ``factory(rendered_metric, settings=..., now=...)``; ``provider_for`` fits."""


@dataclass(frozen=True, slots=True)
class Taken:
    """One measurement taken and judged."""

    measurement: dict[str, Any]  # phase, startedAt, finishedAt, value?, message?, metadata?
    provider: str  # the key under the metric's ``provider:``
    provider_failed: bool  # the provider answered with an error or ran out of time
    seconds: float  # wall time the whole step took


def _transient(error: BaseException) -> bool:
    return isinstance(error, ProviderError) and error.transient


async def take_measurement(
    metric: Metric,
    render: Callable[[], Awaitable[Mapping[str, Any]]],
    *,
    providers: ProviderFactory,
    settings: ProviderSettings,
    now: Clock,
    evaluate: Evaluator,
    time_limit: float,
    retries: int,
    limiter: anyio.CapacityLimiter | None = None,
) -> Taken:
    """Measure ``metric`` once and judge the value; never raises for provider trouble.

    ``render`` returns the metric's spec with its args filled in (it may raise
    ``ProviderError`` or ``InvalidSpecError``, recorded as an Error measurement). The provider
    call, retries included, runs under ``time_limit`` seconds and, when given, ``limiter``.
    """
    started = now()
    wall = time.perf_counter()
    value: str | None = None
    metadata: dict[str, str] = {}
    failed = False
    try:
        rendered = await render()
        provider = providers(rendered, settings=settings, now=now)
        async with AsyncExitStack() as stack:
            if limiter is not None:
                await stack.enter_async_context(limiter)
            with anyio.fail_after(time_limit):
                measurement = None
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception(_transient),
                    stop=stop_after_attempt(retries),
                    wait=wait_exponential(multiplier=0.2, max=2.0),
                    sleep=anyio.sleep, reraise=True,
                ):
                    with attempt:
                        measurement = await provider.measure(rendered)
        assert measurement is not None
        value = measurement.raw
        metadata = dict(measurement.metadata)
        phase, message = measurement_phase(measurement.value, metric, evaluate=evaluate)
    except ProviderError as error:
        phase, message, failed = ERROR, error.message, True
    except TimeoutError:
        phase, message, failed = ERROR, f"measurement timed out after {time_limit:g}s", True
    except InvalidSpecError as error:
        phase, message = ERROR, str(error)
    result: dict[str, Any] = {"phase": phase, "startedAt": format_time(started),
                              "finishedAt": format_time(now())}
    if value is not None:
        result["value"] = value
    if message:
        result["message"] = message
    if metadata:
        result["metadata"] = metadata
    return Taken(measurement=result, provider=metric.provider_name, provider_failed=failed,
                 seconds=time.perf_counter() - wall)
