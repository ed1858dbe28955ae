"""Showing the demo: log lines, and the live state redrawn in place under them.

On a terminal the panel (Rollout, VirtualService route, ReplicaSets, Services) is redrawn
under the log; with ``--plain`` or when output is not a terminal every change is one line.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TextIO

from shiftd.cli.demo.seed import ROLLOUT_NAME
from shiftd.cli.demo.snapshot import Snapshot, weights_text

__all__ = ["Display", "daemon_logs_shown"]

_GREEN, _RED, _DIM, _BOLD, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[2m", "\x1b[1m", "\x1b[0m"


def _state_lines(snapshot: Snapshot, *, now: datetime | None) -> list[str]:
    """The live panel: Rollout, VirtualService route, ReplicaSets, Services."""
    step = f"step {snapshot.step}/{snapshot.steps}" if snapshot.step is not None else "step -"
    current = f" ({snapshot.step_text})" if snapshot.step_text else ""
    if snapshot.pause_ends is not None and now is not None:
        left = max(0.0, (snapshot.pause_ends - now).total_seconds())
        current += f", {left:.0f}s left"
    lines = [f"  Rollout {ROLLOUT_NAME}: {snapshot.phase or '-'}, {step}{current}"]
    if snapshot.message:
        lines.append(f"    {snapshot.message}")
    lines.append("  VirtualService weights: " + (", ".join(
        f"{host} {'-' if weight is None else weight}" for host, weight in snapshot.route)
        or "-"))
    width = max((len(rs.name) for rs in snapshot.replica_sets), default=0)
    lines.extend(f"  ReplicaSet {rs.name:<{width}}  {rs.image:<8} {rs.available}/{rs.replicas}"
                 " available" for rs in snapshot.replica_sets)
    lines.extend(f"  Service {name} selects {pod_hash or '(no hash)'}"
                 f"{f' ({snapshot.image_of(pod_hash)})' if pod_hash else ''}"
                 for _, name, pod_hash in snapshot.selectors)
    return lines


def _fit(line: str, columns: int) -> str:
    """Cut a panel line to the terminal's width, so redrawing in place counts rows right."""
    return line if len(line) < columns else line[: max(0, columns - 2)] + "…"


def _state_line(snapshot: Snapshot) -> str:
    """One line per change, for --plain."""
    step = f"{snapshot.step}/{snapshot.steps}" if snapshot.step is not None else "-"
    sets = ", ".join(f"{rs.image} {rs.available}/{rs.replicas}" for rs in snapshot.replica_sets)
    images = snapshot.selector_images()
    selectors = " ".join(f"{role}→{image or '-'}" for role, image in images.items())
    return (f"    · {snapshot.phase or '-'} step {step} | weights {weights_text(snapshot)} "
            f"| rs {sets or '-'} | svc {selectors or '-'}")


class Display:
    """Log lines, plus the live state: redrawn in place under the log on a terminal, else
    printed as one line per change."""

    def __init__(self, out: TextIO, *, live: bool, now: Callable[[], datetime]) -> None:
        self._out = out
        self._live = live
        self._now = now
        self._panel = 0  # lines of the panel currently drawn
        self._snapshot: Snapshot | None = None

    def _paint(self, text: str, colour: str) -> str:
        return f"{colour}{text}{_RESET}" if self._live else text

    def ok(self, text: str) -> None:
        self.log(self._paint("  ✔ ", _GREEN) + text)

    def fail(self, text: str) -> None:
        self.log(self._paint("  ✘ ", _RED) + text)

    def heading(self, text: str) -> None:
        self.log(self._paint(text, _BOLD))

    def detail(self, text: str) -> None:
        self.log(self._paint(f"    {text}", _DIM))

    def log(self, line: str) -> None:
        self._erase()
        self._out.write(line + "\n")
        self._draw()

    def show(self, snapshot: Snapshot) -> None:
        """A new state: redraw the panel, or print a line."""
        self._snapshot = snapshot
        if self._live:
            self.refresh()
        else:
            self._out.write(_state_line(snapshot) + "\n")
            self._out.flush()

    def refresh(self) -> None:
        """Redraw the panel (the pause countdown moves with the clock)."""
        if self._live:
            self._erase()
            self._draw()

    def close(self) -> None:
        """Leave the last panel on screen, as the final state."""
        self._panel = 0
        self._out.flush()

    def _erase(self) -> None:
        if self._panel:
            self._out.write(f"\x1b[{self._panel}F\x1b[J")
            self._panel = 0

    def _draw(self) -> None:
        if self._live and self._snapshot is not None:
            lines = _state_lines(self._snapshot, now=self._now())
            columns = shutil.get_terminal_size().columns
            self._out.write("".join(_fit(line, columns) + "\n" for line in lines))
            self._panel = len(lines)
        self._out.flush()


class _LogToDisplay(logging.Handler):
    """The daemon's warnings, as log lines that do not break the panel."""

    def __init__(self, display: Display) -> None:
        super().__init__(logging.WARNING)
        self._display = display

    def emit(self, record: logging.LogRecord) -> None:
        self._display.detail(f"log {record.levelname.lower()}: {record.getMessage()}")


@contextmanager
def daemon_logs_shown(display: Display) -> Iterator[None]:
    logger = logging.getLogger("shiftd")
    handler = _LogToDisplay(display)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)

