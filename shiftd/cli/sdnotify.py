"""systemd's notify protocol (``Type=notify``), spoken without libsystemd.

systemd passes a unix datagram socket in ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the
abstract namespace) and, when the unit sets ``WatchdogSec``, the period in
``$WATCHDOG_USEC`` (for the process ``$WATCHDOG_PID``, when set). A message is newline-
separated ``KEY=value`` assignments in one datagram: ``READY=1``, ``STOPPING=1``,
``WATCHDOG=1``, ``RELOADING=1``, ``STATUS=...``. ``Notifier.from_environment`` returns a
notifier that does nothing when shiftd is not run by systemd, so callers never check.

Sending never blocks and never raises: a lost notification must not stop the daemon (systemd
then restarts it by its own rules, which is the right outcome).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

logger = logging.getLogger(__name__)

READY = "READY=1"
STOPPING = "STOPPING=1"
WATCHDOG = "WATCHDOG=1"
RELOADING = "RELOADING=1"


def socket_address(value: str) -> str | None:
    """The address to send to for a ``$NOTIFY_SOCKET`` value: ``@name`` is the abstract
    namespace (a leading NUL byte); an absolute path is a file; anything else is unusable
    (systemd also allows ``vsock:``, which a daemon on a host never gets)."""
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def watchdog_interval(environment: Mapping[str, str], *, pid: int) -> float | None:
    """Seconds between ``WATCHDOG=1`` messages: half of ``$WATCHDOG_USEC``, as sd_watchdog_enabled
    advises; None when no watchdog is asked of this process (unset, zero, unparsable, or
    ``$WATCHDOG_PID`` names another process)."""
    owner = environment.get("WATCHDOG_PID")
    if owner is not None and owner.strip() != str(pid):
        return None
    try:
        microseconds = int(environment.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if microseconds <= 0:
        return None
    return microseconds / 1_000_000 / 2


class Notifier:
    """Sends notify messages to systemd; does nothing without a socket."""

    def __init__(self, address: str | None, *, watchdog_interval: float | None = None) -> None:
        self.address = address
        # None: systemd asked for no watchdog pings.
        self.watchdog_interval = watchdog_interval
        self._warned = False

    @classmethod
    def from_environment(cls, environment: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environment is None else environment
        address = socket_address(env.get("NOTIFY_SOCKET", ""))
        interval = watchdog_interval(env, pid=os.getpid()) if address else None
        return cls(address, watchdog_interval=interval)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``assignments`` as one datagram; True if it was sent."""
        if self.address is None or not assignments:
            return False
        message = "\n".join(assignments).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                sock.sendto(message, self.address)
        except OSError as error:
            if not self._warned:  # once: a broken socket would otherwise log every ping
                self._warned = True
                logger.warning("cannot notify systemd: %s", error,
                               extra={"socket": self.address.replace("\0", "@")})
            return False
        return True

    def reloading(self) -> bool:
        """``RELOADING=1`` with the monotonic timestamp systemd requires since v253."""
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify(RELOADING, f"MONOTONIC_USEC={monotonic_usec}")
