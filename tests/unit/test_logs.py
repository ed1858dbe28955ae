"""Log output: JSON lines with extra fields, plain text, and idempotent configuration."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from shiftd.logs import configure_logging


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_time_level_logger_message_and_extra_fields() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    logging.getLogger("shiftd.test").info("step %d done", 3, extra={"rollout": "shop/web"})
    entry = orjson.loads(stream.getvalue())
    assert entry["level"] == "info"
    assert entry["logger"] == "shiftd.test"
    assert entry["message"] == "step 3 done"
    assert entry["rollout"] == "shop/web"
    assert entry["time"].endswith("Z")


def test_json_keeps_unserialisable_extras_and_exceptions() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("shiftd.test").exception("failed", extra={"thing": object})
    entry = orjson.loads(stream.getvalue())
    assert entry["thing"] == str(object)
    assert "RuntimeError: boom" in entry["exception"]


def test_an_extra_named_like_a_fixed_field_does_not_overwrite_it() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    logging.getLogger("shiftd.test").info("hello", extra={"time": "later"})
    entry = orjson.loads(stream.getvalue())
    assert entry["extra.time"] == "later"
    assert entry["time"] != "later"


def test_text_lines_put_extras_as_key_value_pairs() -> None:
    stream = io.StringIO()
    configure_logging("debug", "text", stream=stream)
    logging.getLogger("shiftd.test").debug("weight set", extra={"rollout": "shop/web"})
    line = stream.getvalue().strip()
    assert line.endswith("DEBUG shiftd.test: weight set rollout=shop/web")


def test_records_below_the_level_are_dropped() -> None:
    stream = io.StringIO()
    configure_logging("WARNING", "text", stream=stream)
    logging.getLogger("shiftd.test").info("quiet")
    assert stream.getvalue() == ""


def test_configuring_twice_replaces_the_handler_instead_of_doubling_lines() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", "json", stream=first)
    configure_logging("info", "text", stream=second)
    logging.getLogger("shiftd.test").info("once")
    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1


def test_unknown_levels_and_formats_are_rejected() -> None:
    with pytest.raises(ValueError, match="log level"):
        configure_logging("loud", "json")
    with pytest.raises(ValueError, match="log format"):
        configure_logging("info", "xml")  # type: ignore[arg-type]
