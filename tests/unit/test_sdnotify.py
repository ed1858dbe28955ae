"""systemd's notify protocol: socket addresses, the watchdog period, datagrams on the wire."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shiftd.cli.sdnotify import READY, STOPPING, Notifier, socket_address, watchdog_interval


@pytest.mark.parametrize(("value", "address"), [
    ("/run/systemd/notify", "/run/systemd/notify"),
    ("@shiftd/notify", "\0shiftd/notify"),
    ("", None),
    ("@", None),
    ("relative/path", None),
    ("vsock:2:1234", None),
])
def test_notify_socket_values_map_to_addresses_with_at_meaning_the_abstract_namespace(
    value: str, address: str | None,
) -> None:
    assert socket_address(value) == address


@pytest.mark.parametrize(("environment", "interval"), [
    ({"WATCHDOG_USEC": "30000000"}, 15.0),
    ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "4242"}, 0.1),
    ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({}, None),
])
def test_the_watchdog_pings_at_half_its_period_only_for_the_process_it_names(
    environment: dict[str, str], interval: float | None,
) -> None:
    assert watchdog_interval(environment, pid=4242) == interval


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(5)
        yield sock, path


def test_a_message_is_one_datagram_of_newline_separated_assignments(
    receiver: tuple[socket.socket, str],
) -> None:
    sock, path = receiver
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": path})
    assert notifier.notify(READY, "STATUS=caches synced")
    assert sock.recv(4096) == b"READY=1\nSTATUS=caches synced"


def test_an_abstract_namespace_socket_receives_the_messages() -> None:
    name = f"shiftd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert Notifier.from_environment({"NOTIFY_SOCKET": "@" + name}).notify(STOPPING)
        assert sock.recv(4096) == b"STOPPING=1"


def test_reloading_carries_the_monotonic_timestamp_systemd_requires(
    receiver: tuple[socket.socket, str],
) -> None:
    sock, path = receiver
    assert Notifier(path).reloading()
    reloading, stamp = sock.recv(4096).decode().split("\n")
    assert reloading == "RELOADING=1"
    assert stamp.startswith("MONOTONIC_USEC=") and int(stamp.split("=")[1]) > 0


def test_without_notify_socket_nothing_is_sent_and_no_watchdog_is_asked() -> None:
    notifier = Notifier.from_environment({"WATCHDOG_USEC": "1000000"})
    assert not notifier.enabled
    assert notifier.watchdog_interval is None
    assert not notifier.notify(READY)


def test_the_watchdog_period_is_read_for_this_process(tmp_path: Path) -> None:
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": str(tmp_path / "s"),
                                          "WATCHDOG_USEC": "4000000",
                                          "WATCHDOG_PID": str(os.getpid())})
    assert notifier.watchdog_interval == 2.0


def test_a_missing_socket_is_warned_about_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    notifier = Notifier(str(tmp_path / "gone"))
    assert not notifier.notify(READY)
    assert not notifier.notify(READY)
    warnings = [r for r in caplog.records if "cannot notify systemd" in r.getMessage()]
    assert len(warnings) == 1
