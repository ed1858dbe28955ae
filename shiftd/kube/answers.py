"""Parse each written object once: the client's bookkeeping between write answers and watch events.

Each write brings the object twice: in the server's answer, and in the watch event it
causes. Whichever comes first must be parsed (write-through: the next reconcile plans from
our own write even before its event arrives); the second need not be, when the cache holds
that very version.

* The event came first: the answer's version (read by ``object_version``) is the cached
  one, and the client returns the cached copy (``KubeClient.reuse_cached_answers``).
* The answer came first: it is parsed and put into the cache at once (write-through as the
  caller's own ``remember`` does it, only before the caller resumes: its event could
  otherwise overtake it), and its version noted here with the object's name
  (``WrittenVersions.note``). When a watch line of that kind then carries that version, an
  ``ADDED`` or ``MODIFIED`` event, and the cache still holds exactly that version of that
  object, ``known_event`` turns the line into an event carrying only the name and version:
  the informer applies it as it applies any event of a version it holds (the watch moves on
  to that version; nothing else changes), and the line is never parsed.

``ParseOnce`` is what the client is given to ask and fill the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

from shiftd.kube.errors import TransportError
from shiftd.kube.resources import ResourceKind
from shiftd.kube.watchstream import WatchEvent, WatchEventType
from shiftd.kube.wire import CachedAnswers, Target, object_version

# Versions noted and not yet seen on a watch; past this the oldest are dropped (a written
# kind no informer watches never sees its versions again).
_NOTED_AT_MOST = 2048
_KNOWN_PREFIXES: tuple[tuple[bytes, WatchEventType], ...] = (
    (b'{"type":"MODIFIED",', "MODIFIED"), (b'{"type":"ADDED",', "ADDED"))


# (kind, the object a write answered) -> None: write-through into the caches
RememberAnswer = Callable[[ResourceKind, dict[str, Any]], None]


class WrittenVersions:
    """The versions of write answers the client parsed (the cache was not yet at them),
    by kind and version: which object each belongs to."""

    def __init__(self) -> None:
        self._noted: dict[tuple[str, str], tuple[str | None, str]] = {}

    def __len__(self) -> int:
        return len(self._noted)

    def note(self, target: Target, version: str) -> None:
        noted = self._noted
        noted[(target.kind.plural, version)] = (target.namespace, target.name)
        if len(noted) > _NOTED_AT_MOST:
            del noted[next(iter(noted))]

    def known_event(self, kind: ResourceKind, line: bytes,
                    holding: CachedAnswers) -> WatchEvent | None:
        """The event of a watch ``line`` whose object the cache holds at that version since
        its write's answer, without parsing it; ``None``: parse the line."""
        event_type = next((known for prefix, known in _KNOWN_PREFIXES
                           if line.startswith(prefix)), None)
        version = None if event_type is None else object_version(line)
        where = None if version is None else self._noted.pop((kind.plural, version), None)
        if event_type is None or version is None or where is None:
            return None
        namespace, name = where
        if holding(kind, namespace, name, version) is None:
            return None
        metadata: dict[str, Any] = {"name": name, "resourceVersion": version}
        if namespace is not None and kind.namespaced:
            metadata["namespace"] = namespace
        return WatchEvent(type=event_type, object={
            "apiVersion": kind.api_version, "kind": kind.kind, "metadata": metadata})


class ParseOnce:
    """The caches as the client sees them: ``holding`` (is this version cached?) and
    ``remember`` (cache this answer), and the versions of the answers it parsed."""

    def __init__(self, *, holding: CachedAnswers, remember: RememberAnswer) -> None:
        self.holding = holding
        self._remember = remember
        self.written = WrittenVersions()

    def parsed(self, target: Target, version: str, answer: dict[str, Any]) -> None:
        """An answer parsed (the cache was not at its version): cached now, and noted."""
        self._remember(target.kind, answer)
        self.written.note(target, version)


def parse_lines(lines: list[bytes], kind: ResourceKind, *,
                once: ParseOnce | None) -> Iterator[WatchEvent | Any]:
    """Each watch line as the event ``known_event`` makes of it, else as its parsed
    document (checked by ``watch_event`` when delivered); a malformed line raises
    ``TransportError`` when its turn comes, after the lines before it were delivered (as if
    the chunk had ended before it).

    One line at a time: a chunk may hold hundreds of events, and parsing them all before
    delivering the first would keep them all alive at once, scattering the cache's long-lived
    objects among short-lived ones (the allocator then cannot give the memory back)."""
    for line in lines:
        known = None if once is None or not once.written else once.written.known_event(
            kind, line, once.holding)
        if known is not None:
            yield known
            continue
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise TransportError(f"malformed watch event: {exc}") from exc
        yield document


__all__ = ["ParseOnce", "RememberAnswer", "WrittenVersions", "parse_lines"]
