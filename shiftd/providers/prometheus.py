"""The Prometheus provider: one PromQL query per measurement, read the way Argo reads it.

An instant query goes to ``GET {address}/api/v1/query``; a metric with ``rangeQuery {start,
end, step}`` goes to ``/api/v1/query_range``, with ``start`` and ``end`` written as Argo's
expr time expressions (``now()``, ``now() - duration("5m")``). What conditions see as
``result``, as in Argo: a vector is a list of floats (an empty vector an empty list), a scalar
a float, a matrix the flat list of every sample of every series; NaN stays NaN. Other result
types (``string``) are errors.

Spec fields honoured: ``address`` (falling back to ``ProviderSettings.prometheus_default_address``),
``query``, ``timeout`` (seconds, default ``ProviderSettings.timeout_seconds``), ``headers``,
``insecure``, ``authentication.basicAuth`` and ``authentication.oauth2``; ``authentication.sigv4``
is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from shiftd.model.durations import parse_duration
from shiftd.providers._http import (
    Response,
    auth_headers,
    deadline,
    go_float,
    is_transient_status,
    load_json,
    request_headers,
    send,
)
from shiftd.providers.base import (
    Clock,
    Measurement,
    ProviderError,
    ProviderSettings,
)

__all__ = ["RESOLVED_QUERY", "PrometheusProvider", "eval_time", "parse_response"]

# The metadata key Argo stores the query under, after argument substitution.
RESOLVED_QUERY = "ResolvedPrometheusQuery"


class PrometheusProvider:
    """Measures ``provider.prometheus`` metrics.

    With ``at_now`` an instant query also sends ``time=<now()>``, so Prometheus answers as of
    that moment rather than its own present (``shiftctl analyze --from`` replays the past this
    way); range queries are always computed from ``now()``.
    """

    def __init__(self, *, settings: ProviderSettings, now: Clock, at_now: bool = False) -> None:
        self._settings = settings
        self._now = now
        self._at_now = at_now

    async def measure(self, metric: Mapping[str, Any]) -> Measurement:
        spec = _spec(metric)
        what = f"prometheus metric {metric.get('name', '<unnamed>')}"
        address = self._address(spec, what=what)
        query = spec.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ProviderError(f"{what}: query is required", transient=False)
        timeout = self._timeout(spec, what=what)
        path, params = self._request(spec, query=query, what=what)
        insecure = bool(spec.get("insecure", False))
        async with deadline(timeout, what=what) as session:
            headers = request_headers(spec, what=what)
            headers.update(
                await auth_headers(
                    session, spec.get("authentication"), what=what, insecure=insecure
                )
            )
            answer = await send(
                session,
                "GET",
                address.rstrip("/") + path,
                what=what,
                insecure=insecure,
                headers=headers,
                params=params,
            )
        value, raw, warnings = parse_response(answer, what=what)
        metadata = {RESOLVED_QUERY: query}
        if warnings:
            metadata["warnings"] = ", ".join(f'"{warning}"' for warning in warnings)
        return Measurement(value=value, raw=raw, metadata=metadata)

    def _address(self, spec: Mapping[str, Any], *, what: str) -> str:
        address = spec.get("address") or self._settings.prometheus_default_address
        if not address:
            raise ProviderError(
                f"{what}: no address, and no default Prometheus address is configured",
                transient=False,
            )
        parts = urlsplit(str(address))
        if not parts.scheme or not parts.netloc:
            raise ProviderError(f"{what}: address {address!r} is not a URL", transient=False)
        return str(address)

    def _timeout(self, spec: Mapping[str, Any], *, what: str) -> float:
        timeout = spec.get("timeout")
        if timeout is None:
            return self._settings.timeout_seconds
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise ProviderError(f"{what}: timeout must be a number of seconds", transient=False)
        if timeout < 0:
            raise ProviderError(f"{what}: timeout must not be negative", transient=False)
        # Argo passes 0 straight to context.WithTimeout, which expires at once; a zero
        # deadline helps nobody, so zero means the default here.
        return float(timeout) if timeout > 0 else self._settings.timeout_seconds

    def _request(
        self, spec: Mapping[str, Any], *, query: str, what: str
    ) -> tuple[str, dict[str, str]]:
        range_query = spec.get("rangeQuery")
        if range_query is None:
            if self._at_now:
                return "/api/v1/query", {"query": query, "time": _unix(self._now())}
            return "/api/v1/query", {"query": query}
        if not isinstance(range_query, Mapping):
            raise ProviderError(f"{what}: rangeQuery must be an object", transient=False)
        now = self._now()
        bounds = {}
        for field in ("start", "end"):
            try:
                bounds[field] = eval_time(str(range_query.get(field) or ""), now=now)
            except ValueError as error:
                raise ProviderError(
                    f"{what}: failed to parse rangeQuery.{field} as time: {error}",
                    transient=False,
                ) from None
        try:
            step = parse_duration(range_query.get("step") or "")
        except ValueError as error:
            raise ProviderError(
                f"{what}: failed to parse rangeQuery.step as duration: {error}", transient=False
            ) from None
        if step <= 0:
            raise ProviderError(f"{what}: rangeQuery.step must be positive", transient=False)
        return "/api/v1/query_range", {
            "query": query,
            "start": _unix(bounds["start"]),
            "end": _unix(bounds["end"]),
            "step": go_float(step),
        }


def _spec(metric: Mapping[str, Any]) -> Mapping[str, Any]:
    provider = metric.get("provider") or {}
    spec = provider.get("prometheus") if isinstance(provider, Mapping) else None
    if not isinstance(spec, Mapping):
        raise ProviderError("metric has no provider.prometheus object", transient=False)
    return spec


def _unix(moment: datetime) -> str:
    return f"{moment.timestamp():.3f}"


# One ``+ duration("5m")`` or ``- duration('1h')`` term after ``now()``.
_TIME_TERM = re.compile(r"\s*([+-])\s*duration\(\s*([\"'`])([^\"'`]*)\2\s*\)")
_NOW = re.compile(r"\s*now\(\s*\)")


def eval_time(expression: str, *, now: datetime) -> datetime:
    """Evaluate the expr time expressions Argo's range queries use, relative to ``now``.

    Accepts ``now()`` followed by any number of ``+ duration("…")`` / ``- duration("…")``
    terms with Go durations, which is what Argo documents for ``rangeQuery``; anything else
    raises ``ValueError``.
    """
    match = _NOW.match(expression)
    if match is None:
        raise ValueError(
            f"unsupported time expression {expression!r}: expected now() optionally "
            'followed by + or - duration("...") terms'
        )
    moment, position = now, match.end()
    while position < len(expression.rstrip()):
        term = _TIME_TERM.match(expression, position)
        if term is None:
            raise ValueError(f"unsupported time expression {expression!r} at {position}")
        sign, _, text = term.groups()
        seconds = parse_duration(text)
        moment += timedelta(seconds=seconds if sign == "+" else -seconds)
        position = term.end()
    return moment


def parse_response(answer: Response, *, what: str) -> tuple[Any, str, list[str]]:
    """``(result, raw, warnings)`` from a Prometheus API answer; raises ProviderError."""
    try:
        document = load_json(answer.body)
    except ValueError:
        document = None
    if not 200 <= answer.status < 300:
        detail = answer.text().strip()[:300] or "(empty body)"
        if isinstance(document, Mapping) and document.get("status") == "error":
            detail = f"{document.get('errorType', 'error')}: {document.get('error', '')}"
        raise ProviderError(
            f"{what}: Prometheus answered {answer.status}: {detail}",
            transient=is_transient_status(answer.status),
        )
    if not isinstance(document, Mapping):
        raise ProviderError(f"{what}: Prometheus answered with no JSON object", transient=False)
    if document.get("status") != "success":
        raise ProviderError(
            f"{what}: Prometheus query failed: {document.get('errorType', 'error')}: "
            f"{document.get('error', '')}",
            transient=False,
        )
    data = document.get("data")
    if not isinstance(data, Mapping):
        raise ProviderError(f"{what}: Prometheus answer has no data", transient=False)
    warnings = [str(warning) for warning in document.get("warnings") or []]
    result_type, result = data.get("resultType"), data.get("result") or []
    try:
        if result_type == "scalar":
            value = _sample(result)
            return value, go_float(value), warnings
        if result_type == "vector":
            values = [_sample(series["value"]) for series in result]
        elif result_type == "matrix":
            values = [_sample(point) for series in result for point in series["values"]]
        else:
            raise ProviderError(
                f"{what}: Prometheus metric type not supported: {result_type}", transient=False
            )
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise ProviderError(
            f"{what}: malformed Prometheus {result_type} result: {error!r}", transient=False
        ) from None
    return values, "[" + ",".join(go_float(value) for value in values) + "]", warnings


def _sample(pair: Any) -> float:
    # A sample is [<unix time>, "<value>"]; the value is a string so NaN and ±Inf survive JSON.
    _, text = pair
    if not isinstance(text, str):
        raise ValueError(f"sample value {text!r} is not a string")
    return float(text)
