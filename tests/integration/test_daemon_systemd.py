"""``shiftd run`` under systemd's eyes: the notify messages it sends and SIGHUP's reload.

The daemon runs as a child process against the test's API server with ``NOTIFY_SOCKET``
naming a datagram socket the test reads, as systemd would for a ``Type=notify`` unit, and a
short ``WATCHDOG_USEC`` so the pings come quickly.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import yaml
from anyio.abc import Process, TaskGroup, UNIXDatagramSocket

from tests.integration.harness import test_cluster
from tests.integration.test_daemon_process import write_config

WATCHDOG_USEC = 200_000  # pings every 0.1s
DEADLINE = 20.0  # seconds for anything the daemon should do


@dataclass
class Supervisor:
    """What systemd would see of the daemon: its notify messages and its log."""

    process: Process
    messages: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    changed: anyio.Event = field(default_factory=anyio.Event)

    def _seen(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    async def receive(self, sock: UNIXDatagramSocket) -> None:
        while True:
            data, _ = await sock.receive()
            self.messages.extend(data.decode().split("\n"))
            self._seen()

    async def read_log(self) -> None:
        assert self.process.stderr is not None
        buffered = b""
        async for chunk in self.process.stderr:
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            self.log.extend(line.decode(errors="replace") for line in lines)
            self._seen()

    async def wait_for(self, found: Callable[[], bool], *, what: str) -> None:
        """Until ``found()`` holds; fails naming ``what`` after DEADLINE seconds."""
        try:
            with anyio.fail_after(DEADLINE):
                while not found():
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(f"no {what}: messages={self.messages} log={self.log}") from None

    def count(self, message: str) -> int:
        return self.messages.count(message)


@asynccontextmanager
async def supervised(config: Path, socket_path: Path) -> AsyncIterator[Supervisor]:
    environment = {**os.environ, "NOTIFY_SOCKET": str(socket_path),
                   "WATCHDOG_USEC": str(WATCHDOG_USEC), "WATCHDOG_PID": ""}
    environment.pop("WATCHDOG_PID")  # any WATCHDOG_PID would name the test, not the daemon
    sock = await anyio.create_unix_datagram_socket(local_path=socket_path)
    process = await anyio.open_process(
        [sys.executable, "-m", "shiftd.cli.daemon", "run", "--config", str(config)],
        env=environment)
    supervisor = Supervisor(process)
    group: TaskGroup
    try:
        async with sock, anyio.create_task_group() as group:
            group.start_soon(supervisor.receive, sock)
            group.start_soon(supervisor.read_log)
            yield supervisor
            group.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
        await process.aclose()


async def test_the_daemon_tells_systemd_it_is_ready_alive_and_stopping(tmp_path: Path) -> None:
    async with test_cluster() as cluster, cluster.kubelet():
        await cluster.apply_example("asm-host-split")
        async with supervised(write_config(cluster, tmp_path), tmp_path / "notify") as daemon:
            await daemon.wait_for(lambda: "READY=1" in daemon.messages, what="READY=1")
            ready_at = daemon.messages.index("READY=1")
            await daemon.wait_for(lambda: daemon.messages[ready_at:].count("WATCHDOG=1") >= 3,
                                  what="three watchdog pings after READY=1")
            assert "STOPPING=1" not in daemon.messages
            daemon.process.send_signal(signal.SIGTERM)
            await daemon.wait_for(lambda: "STOPPING=1" in daemon.messages, what="STOPPING=1")
            with anyio.fail_after(15):
                assert await daemon.process.wait() == 0
        assert daemon.messages.index("READY=1") < daemon.messages.index("STOPPING=1")
        assert "STATUS=caches synced" in daemon.messages


async def test_sighup_reloads_the_log_level_and_namespaces_and_names_the_keys_needing_a_restart(
    tmp_path: Path,
) -> None:
    async with test_cluster() as cluster, cluster.kubelet():
        await cluster.apply_example("asm-host-split")
        config = write_config(cluster, tmp_path)
        async with supervised(config, tmp_path / "notify") as daemon:
            await daemon.wait_for(lambda: "READY=1" in daemon.messages, what="READY=1")
            assert not any(" INFO " in line for line in daemon.log)
            data = yaml.safe_load(config.read_text())
            data["log"]["level"] = "debug"
            data["namespaces"] = [cluster.namespace, "elsewhere"]
            data["workers"] = 3
            config.write_text(yaml.safe_dump(data))
            daemon.process.send_signal(signal.SIGHUP)

            def restart_reported() -> bool:
                return any("need a restart to take effect: workers" in line
                           for line in daemon.log)

            await daemon.wait_for(restart_reported, what="the keys needing a restart")
            await daemon.wait_for(
                lambda: any(f"reload: now watching {cluster.namespace}, elsewhere" in line
                            for line in daemon.log), what="the namespaces changed live")
            # At INFO: printed only because the level is no longer WARNING.
            await daemon.wait_for(
                lambda: any(" INFO " in line and "reload: log.level is now debug" in line
                            for line in daemon.log),
                what="the new level's INFO line")
            await daemon.wait_for(lambda: daemon.count("READY=1") == 2,
                                  what="READY=1 again after the reload")
            assert daemon.messages.index("RELOADING=1") > daemon.messages.index("READY=1")
            daemon.process.send_signal(signal.SIGTERM)
            with anyio.fail_after(15):
                assert await daemon.process.wait() == 0
