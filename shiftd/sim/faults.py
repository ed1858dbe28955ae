"""Fault injection for the emulator: API errors, unanswered requests and broken watch streams.

``FaultInjector`` sits in the server's request path (one call before a request is handled,
one when a watch starts). It answers a configurable share of requests, per verb and
resource, with 409, 429 (``Retry-After``), 500 or 503, or holds them unanswered until the
client gives up; it cuts watch streams in the middle of an event, ends them after N events,
answers resumed watches 410 Expired and withholds bookmarks. Every choice is drawn from one
``random.Random(seed)``, so a scenario that fails replays from its seed (request order
aside). Each injected fault is recorded (``injected``, ``counts``) for tests and benchmarks.

``fail_next`` (one given error for the next matching request) is the older, exact hook.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import orjson
from aiohttp import web

from shiftd.sim.errors import status_body
from shiftd.sim.rbac import RequestAttributes, request_attributes

ERRORS = ("409", "429", "500", "503", "hang")
_READS = frozenset({"get", "list", "watch"})
_MESSAGES = {
    "409": ("Conflict", "Operation cannot be fulfilled on {resource} \"{name}\": the object has "
                        "been modified; please apply your changes to the latest version and try "
                        "again"),
    "429": ("TooManyRequests", "Too many requests, please try again later."),
    "500": ("InternalError", "Internal error occurred: injected fault"),
    "503": ("ServiceUnavailable", "the server is currently unable to handle the request"),
}


@dataclass(frozen=True, slots=True)
class RequestFaults:
    """A ``share`` (0..1) of the requests matching ``verbs`` and ``resources`` fail, each with
    an error drawn from ``errors`` (``ERRORS``: 409 only for writes; ``hang`` holds the
    request unanswered for ``hang_seconds``, beyond the client's timeout, then drops it).

    ``verbs`` are Kubernetes verbs (get, list, watch, create, update, patch, delete); empty
    means every verb but watch. ``resources`` are plurals, ``plural/subresource`` for a
    subresource; empty means every resource. ``users`` names the authenticated users whose
    requests fail ("" is the administrator); empty means everyone's.
    """

    share: float
    errors: tuple[str, ...] = ERRORS
    verbs: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    retry_after: int = 1
    hang_seconds: float = 60.0
    users: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = set(self.errors) - set(ERRORS)
        if unknown:
            raise ValueError(f"unknown injected errors {sorted(unknown)}; known: {ERRORS}")

    def matches(self, attributes: RequestAttributes, user: str) -> bool:
        if self.users and user not in self.users:
            return False
        verb_ok = (attributes.verb in self.verbs if self.verbs
                   else attributes.verb != "watch")
        resource = attributes.resource
        if attributes.subresource:
            resource = f"{resource}/{attributes.subresource}"
        return verb_ok and (not self.resources or resource in self.resources)


@dataclass(frozen=True, slots=True)
class WatchFaults:
    """What happens to watch streams of ``resources`` (plurals; empty: all).

    ``cut_share`` of watches break in the middle of an event line after fewer than
    ``cut_within`` events; with ``close_after`` every watch ends cleanly after that many
    events; ``expire_share`` of watches resumed from a resourceVersion get 410 Expired;
    ``withhold_bookmarks`` sends none. ``users`` as for ``RequestFaults``.
    """

    cut_share: float = 0.0
    cut_within: int = 5
    close_after: int | None = None
    expire_share: float = 0.0
    withhold_bookmarks: bool = False
    resources: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class WatchPlan:
    """What one watch stream will suffer: end (or, ``cut``, break mid-event) after
    ``events`` events (None: never); ``expire`` a resume; send ``bookmarks`` or not."""

    events: int | None = None
    cut: bool = False
    expire: bool = False
    bookmarks: bool = True
    report: Callable[[str], None] = field(default=lambda kind: None, compare=False)


@dataclass(frozen=True, slots=True)
class InjectedFault:
    """One fault injected: its kind (``"429"``, ``"hang"``, ``"watch-cut"``, ...), when
    (``time.monotonic()``) and to what request."""

    kind: str
    verb: str
    resource: str
    at: float


@dataclass(slots=True)
class _Once:
    method: str
    path: re.Pattern[str]
    status: int


class FaultInjector:
    """The emulator's fault control; inert until ``configure`` or ``fail_next``."""

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed
        self.injected: list[InjectedFault] = []
        self._random = random.Random(seed)
        self._rules: tuple[RequestFaults, ...] = ()
        self._watches: WatchFaults | None = None
        self._once: list[_Once] = []

    def configure(self, *rules: RequestFaults, watches: WatchFaults | None = None,
                  seed: int | None = None) -> None:
        """Replace the faults in force (the first matching rule applies to a request);
        ``seed`` restarts the random sequence."""
        if seed is not None:
            self.seed, self._random = seed, random.Random(seed)
        self._rules, self._watches = tuple(rules), watches

    def clear(self) -> None:
        """No more faults (what was injected stays recorded)."""
        self._rules, self._watches = (), None

    @property
    def active(self) -> bool:
        return bool(self._rules or self._watches)

    def counts(self) -> Counter[str]:
        """Faults injected so far, by kind."""
        return Counter(fault.kind for fault in self.injected)

    def fail_next(self, method: str, path_regex: str, status: int) -> None:
        """Answer the next ``method`` request whose path matches with an error ``status``."""
        self._once.append(_Once(method.upper(), re.compile(path_regex), status))

    def _record(self, kind: str, attributes: RequestAttributes | None) -> None:
        verb, resource = ("", "") if attributes is None else (attributes.verb,
                                                               attributes.resource)
        self.injected.append(InjectedFault(kind, verb, resource, time.monotonic()))

    # --- the request path -------------------------------------------------------------------

    async def intercept(self, request: web.Request, *, watch: bool,
                        user: str = "") -> web.Response | None:
        """The injected answer to ``request`` (from ``user``, "" for the administrator), or
        None to handle it normally."""
        for once in self._once:
            if once.method == request.method and once.path.search(request.path):
                self._once.remove(once)
                return _status_response(status_body(once.status, "injected failure for a test"))
        if not self._rules:
            return None
        attributes = request_attributes(request.method, request.path, watch=watch)
        if attributes is None:
            return None
        rule = next((r for r in self._rules if r.matches(attributes, user)), None)
        if rule is None or self._random.random() >= rule.share:
            return None
        choices = [e for e in rule.errors if e != "409" or attributes.verb not in _READS]
        if not choices:
            return None
        kind = self._random.choice(choices)
        self._record(kind, attributes)
        if kind == "hang":
            await anyio.sleep(rule.hang_seconds)  # the client's timeout runs out first
            if request.transport is not None:
                request.transport.close()
            return _status_response(status_body(504, "injected hang"))
        return _error(kind, attributes, retry_after=rule.retry_after)

    def watch_plan(self, request: web.Request, *, user: str = "") -> WatchPlan | None:
        """What the watch ``request`` (from ``user``) will suffer, or None when it runs
        normally."""
        faults = self._watches
        if faults is None or (faults.users and user not in faults.users):
            return None
        attributes = request_attributes(request.method, request.path, watch=True)
        if attributes is None or (faults.resources
                                  and attributes.resource not in faults.resources):
            return None
        resumed = request.query.get("resourceVersion", "") not in ("", "0")
        expire = resumed and self._random.random() < faults.expire_share
        events, cut = faults.close_after, False
        if self._random.random() < faults.cut_share:
            events, cut = self._random.randrange(max(faults.cut_within, 1)), True
        if faults.withhold_bookmarks:
            self._record("bookmarks-withheld", attributes)
        return WatchPlan(events=events, cut=cut, expire=expire,
                         bookmarks=not faults.withhold_bookmarks,
                         report=lambda kind: self._record(kind, attributes))


def _error(kind: str, attributes: RequestAttributes, *, retry_after: int) -> web.Response:
    reason, template = _MESSAGES[kind]
    resource = attributes.resource + (f".{attributes.group}" if attributes.group else "")
    message = template.format(resource=resource, name=attributes.name)
    details: dict[str, object] = {"name": attributes.name, "kind": attributes.resource}
    headers: dict[str, str] = {}
    if kind == "429":
        details["retryAfterSeconds"] = retry_after
        headers["Retry-After"] = str(retry_after)
    return _status_response(status_body(int(kind), message, reason=reason, details=details),
                            headers=headers)


def _status_response(body: dict[str, object], *,
                     headers: dict[str, str] | None = None) -> web.Response:
    code = body["code"]
    assert isinstance(code, int)
    return web.Response(body=orjson.dumps(body), status=code, content_type="application/json",
                        headers=headers)


__all__ = ["ERRORS", "FaultInjector", "InjectedFault", "RequestFaults", "WatchFaults",
           "WatchPlan"]
