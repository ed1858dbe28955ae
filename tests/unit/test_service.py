"""``shiftd run``'s service shell without a process: the watchdog ping follows the event
loop's heartbeat, and a reload tells systemd it is reloading, then ready again."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from shiftd.assembly import Daemon
from shiftd.cli.sdnotify import Notifier
from shiftd.cli.service import Service
from shiftd.config import Settings
from shiftd.runtime.telemetry import Telemetry


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.setblocking(False)
        yield sock, path


def received(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


def service_with_heartbeat(path: str, now: list[float], config: Path) -> Service:
    telemetry = Telemetry(clock=lambda: now[0], stale_after=10.0)
    daemon = Daemon(Settings(), telemetry=telemetry)
    return Service(Settings(), config_path=config, notifier=Notifier(path), daemon=daemon)


def test_the_watchdog_is_pinged_only_while_the_heartbeat_is_fresh(
    receiver: tuple[socket.socket, str], tmp_path: Path,
) -> None:
    sock, path = receiver
    now = [100.0]
    service = service_with_heartbeat(path, now, tmp_path / "c.yaml")
    assert service.ping_watchdog()
    now[0] += 11  # the heartbeat task has not run for longer than stale_after
    assert not service.ping_watchdog()
    assert received(sock) == ["WATCHDOG=1"]


def test_a_reload_is_bracketed_by_reloading_and_ready(
    receiver: tuple[socket.socket, str], tmp_path: Path,
) -> None:
    sock, path = receiver
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"log": {"level": "debug"}}), encoding="utf-8")
    service = service_with_heartbeat(path, [0.0], config)
    service.reload()
    reloading, ready = received(sock)
    assert reloading.startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert ready == "READY=1\nSTATUS=reloaded"
    assert service.settings.log.level == "debug"
