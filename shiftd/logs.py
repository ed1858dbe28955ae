"""Log output for the daemon: JSON lines (via orjson) or plain text, on stderr.

The daemon calls :func:`configure_logging` once at start-up with ``settings.log``; modules
log through ``logging.getLogger(__name__)`` and attach context with ``extra``, e.g.
``log.info("step advanced", extra={"rollout": "shop/web", "step": 3})``. Every ``extra`` field
becomes a key of the JSON object (or ``key=value`` in text).

Named ``logs`` rather than ``logging`` so that it never shadows the standard library module.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging"]

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", (), None).__dict__
) | {"message", "asctime", "taskName"}

# Marks the handler configure_logging installed, so calling it again replaces that handler only.
_HANDLER_NAME = "shiftd"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _RECORD_ATTRIBUTES and not key.startswith("_")
    }


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then the ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            # The fixed fields win; a clashing extra keeps its value under another name.
            entry[f"extra.{key}" if key in entry else key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: an unexpected value (a Path, an exception) is logged, not lost.
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """``2024-05-01T12:00:00.000Z INFO shiftd.runtime: message key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, f"{record.name}:", record.getMessage()]
        parts.extend(f"{key}={value}" for key, value in _extras(record).items())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def configure_logging(
    level: str, fmt: Literal["json", "text"], *, stream: TextIO | None = None
) -> None:
    """Send all records at ``level`` or above to ``stream`` (default: stderr) as ``fmt``.

    Idempotent: calling it again replaces the handler it installed earlier and leaves other
    handlers (pytest's capture, for instance) alone.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    if fmt not in ("json", "text"):
        raise ValueError(f"unknown log format {fmt!r}: use 'json' or 'text'")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    # The Kubernetes client logs whole request and response bodies at debug level (tokens
    # included); shiftd's own debug logging should not switch that on.
    logging.getLogger("kubernetes_asyncio").setLevel(max(numeric, logging.INFO))
