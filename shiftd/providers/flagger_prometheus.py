"""Prometheus queried the way Flagger's Prometheus client queries it: one number per check.

Argo's provider (``prometheus.py``) hands conditions the whole result; Flagger's client wants
one float, and its rules decide when a Canary halts:

- the query's whitespace runs are collapsed to one space, then it is sent as
  ``GET <address>/api/v1/query?query=...`` (a path in the address is kept as a prefix);
- the template's ``headers`` replace the request's headers, then a bearer token or basic
  auth from its ``secretRef`` is added (:func:`prometheus_credentials` reads the Secret);
- each request has 5 s; a status of 400 or more is an error
  (``error response: Status 503 Service Unavailable: <body>``);
- the value is the sample of the result's series (the last one when there are several);
  a range result is ``query returned multiple values``; no series, or NaN, is
  ``no values found`` (:class:`NoValuesFound`), which Flagger reports as traffic missing.

``is_online`` is Flagger's availability check (``vector(1)`` must answer 1).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from shiftd.decide.flagger.metrics import NO_VALUES_ERROR, collapse_whitespace
from shiftd.providers.base import ProviderError

__all__ = ["FLAGGER_QUERY_TIMEOUT", "NoValuesFound", "is_online", "query_url", "run_query"]

FLAGGER_QUERY_TIMEOUT = 5.0
_ONLINE_QUERY = "vector(1)"


class NoValuesFound(ProviderError):
    """The query selected nothing (or NaN): Flagger's ``ErrNoValuesFound``."""

    def __init__(self) -> None:
        super().__init__(NO_VALUES_ERROR, transient=True)


def query_url(address: str) -> str:
    """``<address>/api/v1/query``, keeping a path prefix of the address (Flagger joins them)."""
    parts = urlsplit(address)
    if not parts.scheme or not parts.netloc:
        raise ProviderError(f"prometheus address {address} is not a valid URL", transient=False)
    path = parts.path.rstrip("/") + "/api/v1/query"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


async def run_query(
    session: aiohttp.ClientSession,
    *,
    address: str,
    query: str,
    headers: Mapping[str, Sequence[str]] | None = None,
    authorization: Mapping[str, str] | None = None,
    insecure_skip_verify: bool = False,
    timeout_seconds: float = FLAGGER_QUERY_TIMEOUT,
) -> float:
    """One instant query's value, by Flagger's rules (see the module docstring).

    ``headers`` are a MetricTemplate's ``provider.headers`` (a name to its values);
    ``authorization`` is ``PrometheusCredentials.headers()``. Raises :class:`NoValuesFound`
    or :class:`ProviderError` (``transient`` for what a later check may not meet again).
    """
    request_headers = [(name, value) for name, values in (headers or {}).items()
                       for value in values]
    request_headers += list((authorization or {}).items())
    try:
        async with session.get(
            query_url(address), params={"query": collapse_whitespace(query)},
            headers=request_headers, ssl=not insecure_skip_verify,
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
        ) as response:
            body = await response.read()
            status = response.status
    except TimeoutError:
        raise ProviderError(f"request failed: timeout ({timeout_seconds:g}s) exceeded",
                            transient=True) from None
    except (aiohttp.ClientError, OSError) as error:
        raise ProviderError(f"request failed: {error}", transient=True) from None
    text = body.decode("utf-8", errors="replace")
    if status >= 400:
        raise ProviderError(f"error response: Status {status} {_status_text(status)}: {text}",
                            transient=status >= 500 or status == 429)
    return _value(text)


def _status_text(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _value(text: str) -> float:
    try:
        document = json.loads(text)
        results = document["data"]["result"]
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            raise TypeError("the result is not a list of series")
    except (ValueError, KeyError, TypeError) as error:
        raise ProviderError(f"error unmarshaling result: {error}, '{text}'",
                            transient=False) from None
    value: float | None = None
    for series in results:
        if series.get("values") is not None:
            raise ProviderError("query returned multiple values", transient=False)
        sample: Any = (series.get("value") or [None, None])[1]
        if isinstance(sample, str):
            try:
                value = float(sample)
            except ValueError:
                raise ProviderError(f'strconv.ParseFloat: parsing "{sample}": invalid syntax',
                                    transient=False) from None
    if value is None or math.isnan(value):
        raise NoValuesFound()
    return value


async def is_online(
    session: aiohttp.ClientSession,
    *,
    address: str,
    headers: Mapping[str, Sequence[str]] | None = None,
    authorization: Mapping[str, str] | None = None,
    insecure_skip_verify: bool = False,
) -> None:
    """Flagger's availability check of a Prometheus: raises ProviderError when it fails."""
    try:
        value = await run_query(session, address=address, query=_ONLINE_QUERY, headers=headers,
                                authorization=authorization,
                                insecure_skip_verify=insecure_skip_verify)
    except ProviderError as error:
        raise ProviderError(f"running query failed: {error}", transient=True) from None
    if value != 1:
        raise ProviderError(f"value is not 1 for query: {_ONLINE_QUERY}", transient=True)
