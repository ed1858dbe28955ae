"""The SkyWalking provider: one GraphQL query to the OAP server per measurement.

As Argo does, the template's ``query`` is POSTed to ``{address}/graphql`` with one variable,
``duration``: the last ``interval`` up to now, in minutes (``{"start": "2024-05-01 1202",
"end": "2024-05-01 1205", "step": "MINUTE"}``, UTC). What conditions see as ``result`` is the
answer's ``data`` object, numbers as floats (Go decodes JSON into float64), so a template can
write ``all(result.service_apdex.values.values, {asFloat(.value) >= 9900})``. GraphQL errors
and a null ``data`` are errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from shiftd.model.durations import parse_duration
from shiftd.providers._http import deadline, go_json, is_transient_status, load_json, send
from shiftd.providers.base import (
    Clock,
    Measurement,
    ProviderError,
    ProviderSettings,
)

__all__ = ["SkyWalkingProvider", "query_duration"]

# Go's reference-time layout "2006-01-02 1504", SkyWalking's minute precision.
_MINUTE_FORMAT = "%Y-%m-%d %H%M"


def query_duration(*, now: datetime, interval_seconds: float) -> dict[str, str]:
    """The ``$duration`` variable Argo sends: ``now - interval`` to ``now``, step MINUTE.

    Argo formats its controller's local time, which is UTC in its container image; shiftd
    always formats UTC so the window does not depend on the daemon host's zone.
    """
    end = now.astimezone(UTC)
    start = end - timedelta(seconds=interval_seconds)
    return {
        "start": start.strftime(_MINUTE_FORMAT),
        "end": end.strftime(_MINUTE_FORMAT),
        "step": "MINUTE",
    }


class SkyWalkingProvider:
    """Measures ``provider.skywalking`` metrics."""

    def __init__(self, *, settings: ProviderSettings, now: Clock) -> None:
        self._settings = settings
        self._now = now

    async def measure(self, metric: Mapping[str, Any]) -> Measurement:
        what = f"skywalking metric {metric.get('name', '<unnamed>')}"
        spec = _spec(metric)
        address, query = spec.get("address"), spec.get("query")
        if not isinstance(address, str) or not address:
            raise ProviderError(f"{what}: address is required", transient=False)
        if not isinstance(query, str) or not query.strip():
            raise ProviderError(f"{what}: query is required", transient=False)
        try:
            interval = parse_duration(spec.get("interval") or "")
        except ValueError as error:
            raise ProviderError(f"{what}: interval: {error}", transient=False) from None
        payload = {
            "query": query,
            "variables": {"duration": query_duration(now=self._now(), interval_seconds=interval)},
        }
        async with deadline(self._settings.timeout_seconds, what=what) as session:
            answer = await send(
                session,
                "POST",
                address.rstrip("/") + "/graphql",
                what=what,
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Accept": "application/json; charset=utf-8",
                },
                data=json.dumps(payload),
            )
        try:
            document = load_json(answer.body)
        except ValueError:
            document = None
        errors = document.get("errors") if isinstance(document, Mapping) else None
        if not 200 <= answer.status < 300:
            detail = _first_message(errors) or answer.text().strip()[:300] or "(empty body)"
            raise ProviderError(
                f"{what}: SkyWalking answered {answer.status}: {detail}",
                transient=is_transient_status(answer.status),
            )
        if not isinstance(document, Mapping):
            raise ProviderError(f"{what}: SkyWalking answered with no JSON object", transient=False)
        if errors:
            message = _first_message(errors) or repr(errors)
            raise ProviderError(f"{what}: graphql: {message}", transient=False)
        data = document.get("data")
        if data is None:
            raise ProviderError(
                f"{what}: no results returned from SkyWalking query", transient=False
            )
        return Measurement(value=data, raw=go_json(data))


def _spec(metric: Mapping[str, Any]) -> Mapping[str, Any]:
    provider = metric.get("provider") or {}
    spec = provider.get("skywalking") if isinstance(provider, Mapping) else None
    if not isinstance(spec, Mapping):
        raise ProviderError("metric has no provider.skywalking object", transient=False)
    return spec


def _first_message(errors: Any) -> str | None:
    if isinstance(errors, list) and errors:
        first = errors[0]
        if isinstance(first, Mapping) and first.get("message"):
            return str(first["message"])
        return str(first)
    return None
