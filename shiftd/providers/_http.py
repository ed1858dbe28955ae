"""HTTP plumbing the providers share: one deadline, one session, errors sorted by retryability.

Every provider call runs inside :func:`deadline` (an overall timeout that also covers an
OAuth2 token fetch) and talks through :func:`send`, which turns aiohttp's failures into
:class:`ProviderError`: no connection, a reset or a timeout is transient; so is a 5xx or a
429 answer. The caller decides what other statuses mean. Also here: the header and
authentication fields Argo's Prometheus and web metrics share (``headers``,
``authentication.basicAuth``, ``authentication.oauth2``), and Go-compatible formatting of
numbers and JSON, so ``Measurement.raw`` reads as Argo would have written it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
from multidict import CIMultiDict

from shiftd.providers.base import ProviderError

__all__ = [
    "Response",
    "auth_headers",
    "basic_authorization",
    "deadline",
    "go_float",
    "go_json",
    "is_transient_status",
    "load_json",
    "request_headers",
    "send",
]

# aiohttp reports a refused connection, a reset and a malformed reply through these; all of
# them can pass when the server comes back.
_TRANSIENT_ERRORS = (aiohttp.ClientError, OSError)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def is_transient_status(status: int) -> bool:
    return status >= 500 or status == 429


@asynccontextmanager
async def deadline(seconds: float, *, what: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A fresh session whose every use must finish within ``seconds`` in total.

    Expiry raises a transient :class:`ProviderError` naming ``what``; cancellation from outside
    propagates unchanged. Proxies come from the environment, as Go's default transport does.
    """
    try:
        async with asyncio.timeout(seconds), aiohttp.ClientSession(trust_env=True) as session:
            yield session
    except TimeoutError:
        raise ProviderError(f"{what} timed out after {seconds:g}s", transient=True) from None


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    what: str,
    insecure: bool = False,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    data: bytes | str | Mapping[str, str] | None = None,
) -> Response:
    """Send one request and read the whole answer, whatever its status."""
    try:
        async with session.request(
            method,
            url,
            headers=dict(headers or {}),
            params=dict(params) if params is not None else None,
            data=data,
            # False skips certificate checks; True is aiohttp's default verification.
            ssl=not insecure,
            allow_redirects=True,
        ) as answer:
            body = await answer.read()
            return Response(status=answer.status, body=body, content_type=answer.content_type)
    except aiohttp.InvalidURL as error:
        raise ProviderError(f"{what}: invalid URL {url!r}: {error}", transient=False) from None
    except _TRANSIENT_ERRORS as error:
        raise ProviderError(f"{what}: {_describe(error)}", transient=True) from None


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return " ".join(text.split())


def request_headers(spec: Mapping[str, Any], *, what: str) -> CIMultiDict[str]:
    """The ``headers: [{key, value}]`` of a Prometheus or web metric; later keys win."""
    headers: CIMultiDict[str] = CIMultiDict()
    entries = spec.get("headers") or []
    if not isinstance(entries, list):
        raise ProviderError(f"{what}: headers must be a list of {{key, value}}", transient=False)
    for entry in entries:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("key"), str):
            raise ProviderError(
                f"{what}: each header needs a string key, got {entry!r}", transient=False
            )
        value = entry.get("value", "")
        headers[entry["key"]] = "" if value is None else str(value)
    return headers


async def auth_headers(
    session: aiohttp.ClientSession,
    authentication: Mapping[str, Any] | None,
    *,
    what: str,
    insecure: bool = False,
) -> dict[str, str]:
    """The Authorization header ``authentication`` calls for, fetching an OAuth2 token if asked.

    ``basicAuth {username, password}`` and ``oauth2 {tokenUrl, clientId, clientSecret,
    scopes}`` (the client-credentials grant) are supported; ``sigv4`` is not.
    """
    if not authentication:
        return {}
    if not isinstance(authentication, Mapping):
        raise ProviderError(f"{what}: authentication must be an object", transient=False)
    if any(authentication.get("sigv4") or {}):
        raise ProviderError(
            f"{what}: authentication.sigv4 (Amazon Managed Prometheus) is not supported by "
            "shiftd yet",
            transient=False,
        )
    headers: dict[str, str] = {}
    basic = authentication.get("basicAuth") or {}
    username, password = basic.get("username") or "", basic.get("password") or ""
    if username or password:
        for field, value in (("username", username), ("password", password)):
            if not value:
                raise ProviderError(
                    f"{what}: authentication.basicAuth.{field} is required", transient=False
                )
        headers["Authorization"] = basic_authorization(username, password)
    oauth2 = authentication.get("oauth2") or {}
    if oauth2.get("tokenUrl"):
        token = await _client_credentials_token(session, oauth2, what=what, insecure=insecure)
        headers["Authorization"] = f"Bearer {token}"
    return headers


async def _client_credentials_token(
    session: aiohttp.ClientSession,
    oauth2: Mapping[str, Any],
    *,
    what: str,
    insecure: bool,
) -> str:
    client_id, secret = oauth2.get("clientId") or "", oauth2.get("clientSecret") or ""
    if not client_id or not secret:
        raise ProviderError(
            f"{what}: authentication.oauth2 needs clientId and clientSecret", transient=False
        )
    form = {"grant_type": "client_credentials"}
    scopes = oauth2.get("scopes") or []
    if scopes:
        form["scope"] = " ".join(str(scope) for scope in scopes)
    answer = await send(
        session,
        "POST",
        str(oauth2["tokenUrl"]),
        what=f"{what}: OAuth2 token request",
        insecure=insecure,
        headers={"Authorization": basic_authorization(client_id, secret)},
        data=form,
    )
    if answer.status != 200:
        raise ProviderError(
            f"{what}: OAuth2 token request answered {answer.status}: {answer.text()[:200]}",
            transient=is_transient_status(answer.status),
        )
    try:
        token = json.loads(answer.body)["access_token"]
    except (ValueError, KeyError, TypeError):
        token = None
    if not isinstance(token, str) or not token:
        raise ProviderError(f"{what}: OAuth2 token response has no access_token", transient=False)
    return token


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` value for HTTP basic auth (UTF-8, as Go's SetBasicAuth)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def load_json(body: bytes) -> Any:
    """Parse JSON as Go's ``json.Unmarshal`` into ``any`` does: every number is a float, and
    the bare ``NaN``/``Infinity`` tokens Python's ``json.dumps`` writes are not JSON (Go
    refuses them; accepting them made an unreadable answer an unencodable value)."""
    return json.loads(body, parse_int=float, parse_constant=_not_json)


def _not_json(token: str) -> Any:
    raise ValueError(f"invalid character {token[0]!r} looking for beginning of value")


def go_float(value: float) -> str:
    """``value`` as Go's ``strconv.FormatFloat(v, 'f', -1, 64)``: ``1``, ``0.95``, ``NaN``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


_EXPONENT = re.compile(r"e([+-])0(\d)")


def _go_json_float(value: float) -> str:
    # Go's encoder writes fixed notation between 1e-6 and 1e21 and exponent notation outside,
    # with a one-digit exponent where Python would write two.
    if not math.isfinite(value):
        raise ProviderError(f"cannot encode {value} as JSON", transient=False)
    if value == 0 or 1e-6 <= abs(value) < 1e21:
        return go_float(value)
    return _EXPONENT.sub(r"e\1\2", repr(value))


def go_json(value: Any) -> str:
    """``value`` as Go's ``json.Marshal`` writes it: compact, sorted keys, floats like Go."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return _go_json_float(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
            text = text.replace(char, escape)
        return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if isinstance(value, Mapping):
        items = sorted((str(key), item) for key, item in value.items())
        return "{" + ",".join(f"{go_json(key)}:{go_json(item)}" for key, item in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    raise ProviderError(f"cannot encode {type(value).__name__} as JSON", transient=False)
