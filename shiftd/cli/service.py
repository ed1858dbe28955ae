"""``shiftd run`` as a service: the daemon under its signals, talking to systemd.

One task group holds the daemon (``shiftd.assembly.Daemon``), the signal handler and, once
the caches have synced, the watchdog. systemd hears ``READY=1`` when the daemon is ready (the
point ``Daemon.run`` reports started: every required cache listed), ``WATCHDOG=1`` every half
watchdog period for as long as the event loop's heartbeat is fresh (the same test as
/healthz, so a blocked loop is killed by systemd as the kubelet would kill the pod), and
``STOPPING=1`` when a stop begins.

Signals: SIGTERM/SIGINT stop the daemon in order and a second one exits at once; SIGHUP
re-reads the configuration file (``shiftd.cli.reload``): the log level and the watched
namespaces change live, every other changed key is logged as needing a restart.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import anyio
from anyio.abc import TaskGroup, TaskStatus

from shiftd.assembly import Daemon
from shiftd.cli.eventloop import running_loop_name
from shiftd.cli.reload import reload
from shiftd.cli.sdnotify import READY, STOPPING, WATCHDOG, Notifier
from shiftd.common.tasks import single_error
from shiftd.config import Settings

logger = logging.getLogger(__name__)


class Service:
    """The daemon, its configuration file and systemd, under SIGTERM/SIGINT/SIGHUP."""

    def __init__(self, settings: Settings, *, config_path: Path,
                 notifier: Notifier | None = None, daemon: Daemon | None = None) -> None:
        self.settings = settings
        self.config_path = config_path
        self.notifier = notifier or Notifier.from_environment()
        self.daemon = daemon or Daemon(settings)

    async def serve(self) -> int:
        """Run until stopped; the process exit code."""
        with single_error():  # a failure of the daemon reaches ``shiftd run`` as itself
            async with anyio.create_task_group() as group:
                await group.start(self._handle_signals)
                await group.start(self._run_daemon, group)
                self.notifier.notify(READY, "STATUS=caches synced")
                logger.info("ready", extra={"systemd": self.notifier.enabled,
                                            "event_loop": running_loop_name()})
                if self.notifier.watchdog_interval is not None:
                    group.start_soon(self._watchdog, self.notifier.watchdog_interval)
        return 0

    async def _run_daemon(self, group: TaskGroup, *,
                          task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await self.daemon.run(task_status=task_status)
        # The daemon has stopped: so do the signals and pings. (Not in a ``finally``: a
        # failure before the daemon started would be swallowed by the cancelled group, and
        # ``shiftd run`` would exit 0; raised, it ends the group by itself.)
        group.cancel_scope.cancel()

    async def _handle_signals(self, *,
                              task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Handle signals for as long as the service runs (the handlers are installed while
        this task holds the receiver open)."""
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT,
                                        signal.SIGHUP) as signals:
            task_status.started()
            async with anyio.create_task_group() as reloads:
                async for signum in signals:
                    if signum == signal.SIGHUP:
                        if self.reload():
                            # listing a new namespace may take a while: signals go on meanwhile
                            reloads.start_soon(self._watch_namespaces)
                        continue
                    self._stop_on(signum)

    def _stop_on(self, signum: int) -> None:
        if self.daemon.stopping:
            logger.warning("second signal: exiting at once")
            os._exit(128 + signum)
        logger.info("received %s", signal.Signals(signum).name)
        self.notifier.notify(STOPPING, "STATUS=stopping")
        self.daemon.stop()

    async def _watch_namespaces(self) -> None:
        namespaces = self.settings.namespaces
        await self.daemon.set_namespaces(namespaces)
        logger.info("reload: now watching %s",
                    ", ".join(namespaces) if namespaces else "every namespace")

    def reload(self) -> bool:
        """SIGHUP: apply the file's log level; name every other change but the namespaces
        as needing a restart. True when the namespaces are to change."""
        self.notifier.reloading()
        result = reload(self.settings, self.config_path)
        self.settings = result.settings
        if result.error is not None:
            logger.error("reload: configuration not changed: %s", result.error)
        if "log.level" in result.applied:
            # At INFO, after the change: printed only if the new level lets it through.
            logger.info("reload: log.level is now %s", self.settings.log.level)
        if result.need_restart:
            logger.warning("reload: changed keys need a restart to take effect: %s",
                           ", ".join(result.need_restart),
                           extra={"keys": list(result.need_restart)})
        if not (result.error or result.applied or result.need_restart):
            logger.info("reload: configuration unchanged")
        self.notifier.notify(READY, "STATUS=reloaded")
        return "namespaces" in result.applied

    async def _watchdog(self, interval: float) -> None:
        """``WATCHDOG=1`` every ``interval`` while the event loop's heartbeat is fresh; a
        stale heartbeat withholds the ping, so systemd's watchdog fires."""
        while True:
            self.ping_watchdog()
            await anyio.sleep(interval)

    def ping_watchdog(self) -> bool:
        """``WATCHDOG=1`` if the event loop's heartbeat is fresh; True if it was sent."""
        if not self.daemon.telemetry.alive:
            logger.error("event loop heartbeat is stale: withholding the watchdog ping")
            return False
        return self.notifier.notify(WATCHDOG)
