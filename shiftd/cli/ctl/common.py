"""What every ``shiftctl`` module shares: exit codes, the one-line error, object aliases.

Exit codes follow kubectl's habits: 0 success, 1 a failed operation (one line on stderr),
2 bad usage; ``status`` exits 2 when its ``--timeout`` runs out.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
PROGRAM = "shiftctl"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_TIMEOUT = 2  # status: the watch ran out of time


class CommandError(Exception):
    """A command failed; the message is the one line shown on stderr."""


class UsageError(CommandError):
    """The command line asks for something impossible (exit 2), e.g. a file that is no YAML."""


def not_found(name: str, namespace: str) -> CommandError:
    return CommandError(f'rollout "{name}" not found in namespace "{namespace}"')


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
