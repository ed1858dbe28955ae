"""Flagger's Canary webhooks: the JSON payload, and one call with Flagger's timeout and retries.

A Canary's ``analysis.webhooks[]`` are POSTed the payload Flagger's ``CanaryWebhookPayload``
defines: ``name``, ``namespace``, ``phase``, ``checksum`` and (only when not empty)
``metadata``. There is no ``type`` field in it: receivers tell hooks apart by URL or
metadata. What each type means to the analysis (a confirm hook gates, a ``rollback`` hook that
answers OK rolls back, ``event`` hooks carry Events) is the controller's business; here a call
answers :class:`WebhookResult`.

A call is Flagger's ``callWebhook``, which uses hashicorp's retryablehttp:

- ``timeout`` (a Go duration; ``10s`` when absent or shorter than two characters) bounds each
  attempt, body included;
- ``retries`` (default 0) more attempts after a connection error, a timeout, a 429 or a 5xx
  other than 501, waiting 1 s, 2 s, 4 s ... (at most 30 s; a 429 or 503 with ``Retry-After``
  waits what it says, capped at 30 s here);
- a status above 202 fails the check, with the response body as the error: 203-299 fail too,
  as in Flagger. When retries run out the error is retryablehttp's ``POST <url> giving up
  after N attempt(s)``;
- ``disableTLS`` skips certificate verification.

The load-test webhook (Flagger's loadtester, seed 003) is an ordinary ``rollout`` hook whose
``metadata`` carries ``cmd`` (and optionally ``type``: ``cmd`` by default, ``bash``, ``helm``,
``kubectl``, ``concord``...). The loadtester answers 400 ``metadata not found in payload``
without metadata and 200 once the command is queued (``cmd``) or has run (the others).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import anyio

from shiftd.model.durations import parse_duration

__all__ = [
    "DEFAULT_TIMEOUT",
    "HOOK_TYPES",
    "PROGRESSING_HOOK_TYPES",
    "WebhookResult",
    "call_webhook",
    "event_payload",
    "hook_timeout_seconds",
    "retry_delay_seconds",
    "webhook_payload",
]

HOOK_TYPES = (
    "confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase",
    "confirm-promotion", "post-rollout", "rollback", "event",
)
# Flagger calls these with phase Progressing, whatever the Canary's phase is at the time.
PROGRESSING_HOOK_TYPES = frozenset(
    {"pre-rollout", "rollout", "", "confirm-traffic-increase", "confirm-promotion"})
DEFAULT_TIMEOUT = "10s"
# retryablehttp's default backoff: 1 s doubling per attempt, at most 30 s.
_BACKOFF_MIN_SECONDS = 1.0
_BACKOFF_MAX_SECONDS = 30.0
# The highest status Flagger counts as a passed check.
_HIGHEST_OK_STATUS = 202

Sleep = Callable[[float], Awaitable[None]]


def webhook_payload(
    *,
    name: str,
    namespace: str,
    phase: str,
    hook_type: str,
    metadata: Mapping[str, str] | None,
    checksum: str,
) -> dict[str, Any]:
    """The body Flagger POSTs to a hook of ``hook_type`` for the Canary ``namespace/name``.

    ``phase`` is the Canary's phase (for ``post-rollout`` and ``rollback``, the phase the
    analysis ended in); Flagger sends ``Progressing`` to ``pre-rollout``, ``rollout``,
    ``confirm-traffic-increase`` and ``confirm-promotion`` hooks whatever the phase.
    ``checksum`` is Flagger's hash of the Canary's tracked configs and last applied spec.
    """
    payload: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "phase": "Progressing" if hook_type in PROGRESSING_HOOK_TYPES else phase,
        "checksum": checksum,
    }
    if metadata:
        payload["metadata"] = dict(metadata)
    return payload


def event_payload(
    *,
    name: str,
    namespace: str,
    phase: str,
    checksum: str,
    metadata: Mapping[str, str] | None,
    message: str,
    event_type: str,
    timestamp_ms: int,
) -> dict[str, Any]:
    """What an ``event`` hook receives for one Event (``event_type`` Normal or Warning).

    Flagger's own keys (``eventMessage``, ``eventType``, ``timestamp`` in Unix milliseconds)
    win over the hook's ``metadata`` of the same name.
    """
    merged = {**(metadata or {}), "eventMessage": message, "eventType": event_type,
              "timestamp": str(timestamp_ms)}
    return {"name": name, "namespace": namespace, "phase": phase, "checksum": checksum,
            "metadata": merged}


@dataclass(frozen=True, slots=True)
class WebhookResult:
    """How one hook answered. ``ok`` is Flagger's "no error"; ``error`` is what its Events show."""

    ok: bool
    status: int | None  # the last answer's status; None when no answer came
    attempts: int
    error: str = ""
    body: str = ""


def hook_timeout_seconds(hook: Mapping[str, Any]) -> float:
    """Each attempt's timeout: ``timeout`` as a Go duration, 10 s when unset (Flagger)."""
    raw = str(hook.get("timeout") or "")
    return parse_duration(raw if len(raw) >= 2 else DEFAULT_TIMEOUT)


def retry_delay_seconds(attempt: int, *, status: int | None, retry_after: str | None) -> float:
    """retryablehttp's wait before attempt ``attempt + 1`` (``attempt`` counts from 0)."""
    if status in (429, 503) and retry_after:
        waited = _retry_after_seconds(retry_after)
        if waited is not None:
            return min(waited, _BACKOFF_MAX_SECONDS)
    delay = _BACKOFF_MIN_SECONDS * 2.0 ** attempt
    return _BACKOFF_MAX_SECONDS if math.isinf(delay) else min(delay, _BACKOFF_MAX_SECONDS)


def _retry_after_seconds(value: str) -> float | None:
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _retries(hook: Mapping[str, Any]) -> int:
    raw = hook.get("retries") or 0
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise ValueError(f"retries must be a non-negative integer, got {raw!r}")
    return raw


def _is_retried_status(status: int) -> bool:
    return status == 429 or (status >= 500 and status != 501)


async def call_webhook(
    session: aiohttp.ClientSession,
    hook: Mapping[str, Any],
    payload: Mapping[str, Any],
    *,
    sleep: Sleep = anyio.sleep,
) -> WebhookResult:
    """POST ``payload`` to ``hook['url']`` as Flagger does (see the module docstring).

    ``sleep`` waits between attempts (tests pass one that records the waits). Never raises
    for what the hook does; a hook spec Flagger cannot use (bad timeout, no URL) is a failed
    result too, as Flagger fails the check.
    """
    url = str(hook.get("url") or "")
    try:
        timeout = hook_timeout_seconds(hook)
        retries = _retries(hook)
    except ValueError as error:
        return WebhookResult(ok=False, status=None, attempts=0, error=str(error))
    if not url:
        return WebhookResult(ok=False, status=None, attempts=0, error="webhook has no url")
    verify = not bool(hook.get("disableTLS", False))
    reason = ""
    status: int | None = None
    for attempt in range(retries + 1):
        status, body, retry_after, reason = await _attempt(
            session, url, payload, attempt_seconds=timeout, verify=verify)
        if status is not None and not _is_retried_status(status):
            ok = status <= _HIGHEST_OK_STATUS
            return WebhookResult(ok=ok, status=status, attempts=attempt + 1,
                                 error="" if ok else body, body=body)
        if attempt < retries:
            await sleep(retry_delay_seconds(attempt, status=status, retry_after=retry_after))
    detail = f": {reason}" if reason else ""
    return WebhookResult(
        ok=False, status=status, attempts=retries + 1,
        error=f"POST {url} giving up after {retries + 1} attempt(s){detail}")


async def _attempt(
    session: aiohttp.ClientSession,
    url: str,
    payload: Mapping[str, Any],
    *,
    attempt_seconds: float,
    verify: bool,
) -> tuple[int | None, str, str | None, str]:
    """One POST: (status, body, Retry-After, reason) — status None when no answer came."""
    try:
        async with session.post(
            url, json=dict(payload), timeout=aiohttp.ClientTimeout(total=attempt_seconds),
            ssl=verify,
        ) as response:
            body = (await response.read()).decode("utf-8", errors="replace")
            return response.status, body, response.headers.get("Retry-After"), ""
    except TimeoutError:
        return None, "", None, f'Post "{url}": timeout ({attempt_seconds:g}s) exceeded'
    except (aiohttp.ClientError, OSError) as error:
        return None, "", None, f'Post "{url}": {error}'
