"""``shiftctl`` (also ``kubectl shift``): the operator's command line for shiftd.

One module per concern: ``operations`` sends what ``kubectl argo rollouts`` sends (the
integration harness and ``shiftd demo`` call it too), ``view`` reads and ``render`` draws
``get rollout`` (from the read models of :mod:`shiftd.views`), ``planning`` runs the daemon's
planner offline for ``plan``, ``analyze`` measures analysis templates' metrics now or over a
past window, ``lint`` checks manifests, ``files`` reads manifests, ``completion`` writes
shell completion; ``parser`` declares the command line, ``commands`` holds one handler per
command over an ``invocation``, and ``app`` is the entry point.
"""

from shiftd.cli.ctl.app import build_parser, context_namespace, main
from shiftd.cli.ctl.common import CommandError
from shiftd.cli.ctl.operations import (
    abort_rollout,
    get_rollout,
    pause_rollout,
    promote_rollout,
    restart_rollout,
    resume_rollout,
    retry_rollout,
    send_operator_patch,
    set_rollout_image,
    undo_rollout,
    wait_for_rollout,
)

__all__ = [
    "CommandError",
    "abort_rollout",
    "build_parser",
    "context_namespace",
    "get_rollout",
    "main",
    "pause_rollout",
    "promote_rollout",
    "restart_rollout",
    "resume_rollout",
    "retry_rollout",
    "send_operator_patch",
    "set_rollout_image",
    "undo_rollout",
    "wait_for_rollout",
]
