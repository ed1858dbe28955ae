"""The analysis seam: where AnalysisRuns will be created, polled and judged.

The daemon runs one analysis task beside the others and asks it, for each reconcile, the phase
of the current step's AnalysisRun (``Observed.step_analysis_phase``). Until the analysis
layer exists (its own issue), ``NoAnalysis`` is that task: it reports no phase, so an
``analysis`` step waits (the Rollout stays Progressing at that step, visibly), and background
analysis is not run. Nothing else in the daemon changes when a real poller replaces it.
"""

from __future__ import annotations

from typing import Protocol

import anyio
from anyio.abc import TaskStatus

from shiftd.model.rollout import Rollout


class AnalysisPoller(Protocol):
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Poll providers and update AnalysisRuns until cancelled."""

    def step_phase(self, rollout: Rollout) -> str | None:
        """The phase of the AnalysisRun of ``rollout``'s current step, if there is one."""


class NoAnalysis:
    """The analysis task before analysis is implemented: reports nothing, polls nothing."""

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await anyio.sleep_forever()

    def step_phase(self, rollout: Rollout) -> str | None:
        return None
