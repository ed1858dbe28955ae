"""What ``SIGHUP`` changes in a running daemon: the log level and the watched namespaces.

``reload(running, path)`` reads the configuration file again and compares it with the settings
the daemon runs with, key by key (camelCase paths, as in the file). ``log.level`` is applied
at once; ``namespaces`` is returned as applied for the caller to hand to the daemon
(``Daemon.set_namespaces``: a new namespace is listed before its Rollouts are reconciled, one
dropped is forgotten); every other changed key is reported as needing a restart, by name.

A file that no longer validates changes nothing: the error is returned and the daemon carries
on with what it has.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from shiftd.config import ConfigError, Settings, load_settings
from shiftd.logs import configure_logging

# Keys applied without a restart.
LIVE_KEYS = frozenset({"log.level", "namespaces"})


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """The settings now in force, and what the file changed."""

    settings: Settings
    applied: tuple[str, ...] = ()  # keys now in force
    need_restart: tuple[str, ...] = ()  # keys that changed in the file but not in the daemon
    error: str | None = None  # the file was not usable; nothing changed


def flatten(settings: Settings) -> dict[str, Any]:
    """Every leaf of the settings as ``{"camel.case.path": value}`` (lists are leaves)."""
    leaves: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                walk(f"{prefix}.{key}" if prefix else key, child)
        else:
            leaves[prefix] = value

    walk("", settings.model_dump(mode="json", by_alias=True))
    return leaves


def changed_keys(old: Settings, new: Settings) -> list[str]:
    """The camelCase key paths whose values differ, sorted."""
    before, after = flatten(old), flatten(new)
    return sorted(key for key in before.keys() | after.keys()
                  if before.get(key) != after.get(key))


def reload(running: Settings, path: str | os.PathLike[str]) -> ReloadResult:
    """Apply what can change live from the file at ``path``; report the rest."""
    try:
        wanted = load_settings(path)
    except ConfigError as error:
        return ReloadResult(settings=running, error=str(error))
    changed = changed_keys(running, wanted)
    applied = tuple(key for key in changed if key in LIVE_KEYS)
    settings = running
    if "log.level" in applied:
        configure_logging(wanted.log.level, running.log.format)
        settings = running.model_copy(
            update={"log": running.log.model_copy(update={"level": wanted.log.level})})
    if "namespaces" in applied:
        settings = settings.model_copy(update={"namespaces": wanted.namespaces})
    return ReloadResult(settings=settings, applied=applied,
                        need_restart=tuple(key for key in changed if key not in LIVE_KEYS))
