"""What can go wrong talking to the Kubernetes API, as one exception tree.

The client turns every failed request into one of these, so callers never see aiohttp or
kubernetes_asyncio exceptions::

    KubeError
    ├── NotYetListed            the caches have not listed that kind from its API server yet
    ├── TransportError          no complete HTTP answer came back
    │   ├── ConnectionFailed    the connection broke before the response was complete
    │   │   └── CannotConnect   no connection could be made: refused, unreachable, DNS
    │   └── RequestTimeout      the client-side timeout ran out
    └── ApiError                the API server answered with an error Status
        ├── NotFound            404: no such object (or namespace)
        ├── Conflict            409: stale resourceVersion, or the object already exists
        ├── Gone                410: a watch/list resourceVersion is too old; relist
        ├── UnsupportedMediaType 415: e.g. strategic-merge patch on a custom resource
        ├── Invalid             422: the object failed validation
        ├── TooManyRequests     429: throttled; ``retry_after`` says when to try again
        └── ServerError         5xx: the server failed (``retry_after`` when it says)

The client retries what is safe to send again (see ``shiftd.kube.retrying``): never a 409.
"""

from __future__ import annotations

from typing import Any

import orjson


class KubeError(Exception):
    """Base of everything the Kubernetes client raises."""


class NotYetListed(KubeError):
    """Raised by readers of the caches, not by the client: the kind's informer has not listed
    it yet (its API server, such as a separate mesh cluster, may be unreachable), so a missing
    object may only be unknown; try again later rather than conclude it does not exist."""


class TransportError(KubeError):
    """The request did not get an HTTP response."""


class ConnectionFailed(TransportError):
    """The connection failed or was lost before the response was complete."""


class CannotConnect(ConnectionFailed):
    """No connection could be made: the server is down, unreachable or unresolvable."""


class RequestTimeout(TransportError):
    """The client-side request timeout ran out."""


class ApiError(KubeError):
    """The API server answered with an error; ``reason`` is the Status reason (e.g. "NotFound")."""

    def __init__(self, status: int, reason: str, message: str, *,
                 retry_after: float | None = None) -> None:
        super().__init__(status, reason, message)
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after  # seconds, from Retry-After or retryAfterSeconds

    def __str__(self) -> str:
        return f"{self.status} {self.reason}: {self.message}"


class NotFound(ApiError):
    """404."""


class Conflict(ApiError):
    """409: the object changed since it was read, or it already exists."""


class Gone(ApiError):
    """410: the requested resourceVersion is no longer available; list again."""


class UnsupportedMediaType(ApiError):
    """415: the patch type is not supported for this resource."""


class Invalid(ApiError):
    """422: the object was rejected by validation."""


class TooManyRequests(ApiError):
    """429: the server throttled the request; try again after ``retry_after`` seconds."""


class ServerError(ApiError):
    """5xx: the server could not handle the request (internal error, unavailable, ...)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    404: NotFound,
    409: Conflict,
    410: Gone,
    415: UnsupportedMediaType,
    422: Invalid,
    429: TooManyRequests,
}


def _error_class(code: int) -> type[ApiError]:
    return ServerError if code >= 500 else _BY_STATUS.get(code, ApiError)


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None  # an HTTP date, or nothing: the client's own back-off decides
    return seconds if seconds >= 0 else None


def error_from_status(
    status: dict[str, Any], *, http_status: int = 0, http_reason: str = "",
    retry_after: str | None = None,
) -> ApiError:
    """The exception for a ``Status`` object (from an error response or a watch ERROR event).

    The Status ``code`` wins over the HTTP status: a watch that expired arrives as HTTP 200
    carrying a Status with code 410.
    """
    code = status.get("code")
    code = code if isinstance(code, int) and code > 0 else http_status
    reason = str(status.get("reason") or http_reason)
    message = str(status.get("message") or "")
    details = status.get("details")
    asked = _seconds(retry_after) if retry_after is not None else None
    if asked is None and isinstance(details, dict):
        asked = _seconds(details.get("retryAfterSeconds"))
    return _error_class(code)(code, reason, message, retry_after=asked)


def error_from_response(http_status: int, body: bytes, *, http_reason: str = "",
                        retry_after: str | None = None) -> ApiError:
    """The exception for an HTTP error response, whose body is normally a ``Status``;
    ``retry_after`` is the response's ``Retry-After`` header."""
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("kind") == "Status":
        return error_from_status(parsed, http_status=http_status, http_reason=http_reason,
                                 retry_after=retry_after)
    text = body.decode("utf-8", errors="replace").strip()
    asked = _seconds(retry_after) if retry_after is not None else None
    return _error_class(http_status)(http_status, http_reason, text, retry_after=asked)
