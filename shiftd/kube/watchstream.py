"""Watch streams as the client reads them: JSON lines in, ``WatchEvent`` values out.

``JsonLinesDecoder`` splits chunked bytes into lines, one JSON document each, left unparsed
(the client parses only the lines whose object the cache does not hold yet:
``shiftd.kube.answers.parse_lines``); ``watch_event`` checks a parsed one and turns
an ``ERROR`` event's Status into the exception of :mod:`shiftd.kube.errors` it stands for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from shiftd.kube.errors import TransportError, error_from_status
from shiftd.kube.resources import ResourceKind

JsonObject = dict[str, Any]
WatchEventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]
_WATCH_EVENT_TYPES = frozenset(get_args(WatchEventType))


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One event of a watch stream; for ERROR the object is a ``Status``."""

    type: WatchEventType
    object: JsonObject


class JsonLinesDecoder:
    """Splits a byte stream into lines, one JSON document each, as watch responses send them.

    Chunks may cut a line anywhere; ``lines`` returns the lines completed so far and keeps
    the rest, ``rest`` the last one of a stream that ended without a trailing newline.
    """

    def __init__(self) -> None:
        self._pending = b""

    def lines(self, chunk: bytes) -> list[bytes]:
        """The lines ``chunk`` completes (blank ones left out), not parsed.

        Found with ``bytes.find`` (memchr), not ``split``, which compares byte by byte: a
        chunk of a busy watch holds hundreds of kilobytes and a few dozen lines."""
        if b"\n" not in chunk:
            self._pending += chunk
            return []
        data = self._pending + chunk if self._pending else chunk
        lines: list[bytes] = []
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            line = data[start:end]
            if line.strip():
                lines.append(line)
            start = end + 1
        self._pending = data[start:]
        return lines

    def rest(self) -> list[bytes]:
        """The last line, if the stream ended without a trailing newline."""
        rest, self._pending = self._pending.strip(), b""
        return [rest] if rest else []


def watch_event(document: Any, kind: ResourceKind) -> WatchEvent:
    if not isinstance(document, dict):
        raise TransportError(f"malformed watch event: {document!r}")
    event_type = document.get("type")
    obj = document.get("object")
    if event_type not in _WATCH_EVENT_TYPES or not isinstance(obj, dict):
        raise TransportError(f"malformed watch event: {document!r}")
    if event_type == "ERROR":
        raise error_from_status(obj, http_status=500)
    obj.setdefault("apiVersion", kind.api_version)
    obj.setdefault("kind", kind.kind)
    return WatchEvent(type=cast(WatchEventType, event_type), object=obj)


__all__ = ["JsonLinesDecoder", "WatchEvent", "WatchEventType", "watch_event"]
