"""SIGHUP's reload: the log level applied live, every other change named as needing a
restart, a broken file changing nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from shiftd.cli.reload import changed_keys, flatten, reload
from shiftd.config import Settings, parse_settings


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


def write(path: Path, data: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_changed_keys_are_named_by_their_camel_case_paths() -> None:
    old = parse_settings({"log": {"level": "info"}, "namespaces": ["a"]})
    new = parse_settings({"log": {"level": "debug"}, "namespaces": ["a", "b"],
                          "leaderElection": {"enabled": True}, "resyncPeriod": "5m"})
    assert changed_keys(old, new) == ["leaderElection.enabled", "log.level", "namespaces",
                                      "resyncPeriod"]


def test_the_log_level_is_applied_at_once(tmp_path: Path) -> None:
    running = parse_settings({"log": {"level": "warning", "format": "text"}})
    result = reload(running, write(tmp_path / "c.yaml",
                                   {"log": {"level": "debug", "format": "text"}}))
    assert result.applied == ("log.level",)
    assert result.need_restart == ()
    assert result.settings.log.level == "debug"
    assert logging.getLogger().level == logging.DEBUG


def test_namespaces_apply_and_other_keys_are_reported_as_needing_a_restart(
    tmp_path: Path,
) -> None:
    running = parse_settings({"namespaces": ["shop"], "log": {"format": "json"}})
    result = reload(running, write(tmp_path / "c.yaml", {
        "namespaces": ["shop", "payments"], "workers": 4, "log": {"format": "text"}}))
    assert result.applied == ("namespaces",)
    assert result.need_restart == ("log.format", "workers")
    assert result.settings == running.model_copy(update={"namespaces": ("shop", "payments")})


def test_a_key_needing_a_restart_is_reported_again_at_the_next_reload(tmp_path: Path) -> None:
    running = Settings()
    path = write(tmp_path / "c.yaml", {"workers": 4, "log": {"level": "error"}})
    first = reload(running, path)
    second = reload(first.settings, path)
    assert first.need_restart == second.need_restart == ("workers",)
    assert second.applied == ()


def test_a_file_that_no_longer_validates_changes_nothing(tmp_path: Path) -> None:
    running = Settings()
    result = reload(running, write(tmp_path / "c.yaml", {"wrokers": 4}))
    assert result.settings is running
    assert result.error is not None and "unknown key: wrokers" in result.error
    assert result.applied == result.need_restart == ()


def test_the_documented_example_spells_out_every_key() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "shiftd.yaml"
    written: set[str] = set()

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                walk(f"{prefix}.{key}" if prefix else key, child)
        else:
            written.add(prefix)

    walk("", yaml.safe_load(example.read_text(encoding="utf-8")))
    assert written == set(flatten(Settings()))
