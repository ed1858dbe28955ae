"""``shiftctl``'s command line: the parser, its subcommands and the argument types.

``build_parser`` declares every command with its flags (kubectl's connection flags on those
that talk to the cluster) and the ``handler`` that runs it (:mod:`shiftd.cli.ctl.commands`);
a usage error is one line on stderr with exit 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from shiftd.cli.ctl.commands import (
    cmd_analyze,
    cmd_get,
    cmd_lint,
    cmd_list,
    cmd_plan,
    cmd_promote,
    cmd_restart,
    cmd_set_image,
    cmd_shard,
    cmd_status,
    cmd_undo,
    cmd_version,
    each,
)
from shiftd.cli.ctl.common import EXIT_OK, EXIT_USAGE, PROGRAM
from shiftd.cli.ctl.completion import completion_script
from shiftd.cli.ctl.invocation import Handler, Invocation
from shiftd.cli.ctl.operations import (
    abort_rollout,
    pause_rollout,
    retry_rollout,
)
from shiftd.model.durations import parse_duration

__all__ = ["build_parser"]


class _Parser(argparse.ArgumentParser):
    """Reports a usage error as one line on stderr (exit 2), not the whole usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _image_assignment(text: str) -> tuple[str, str]:
    parts = text.split("=")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise argparse.ArgumentTypeError(f"expected CONTAINER=IMAGE, got {text!r}")
    return parts[0], parts[1]


def _timeout(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a revision number, got {text!r}")
    return value


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an RFC 3339 time, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _arg_assignment(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _connection_flags(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a flag given before the command is not reset by the command's own parser.
    parser.add_argument("--kubeconfig", default=argparse.SUPPRESS,
                        help="path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", default=argparse.SUPPRESS,
                        help="the kubeconfig context to use (default: its current context)")
    parser.add_argument("--mesh-kubeconfig", default=argparse.SUPPRESS,
                        help="kubeconfig of the cluster holding Istio's objects, when that is "
                             "another cluster (as shiftd's mesh.kubeconfig)")
    parser.add_argument("--mesh-context", default=argparse.SUPPRESS,
                        help="kubeconfig context of that mesh cluster")
    parser.add_argument("-n", "--namespace", default=argparse.SUPPRESS,
                        help="namespace (default: the context's namespace, else 'default')")


def _output_flag(parser: argparse.ArgumentParser, choices: Sequence[str]) -> None:
    parser.add_argument("-o", "--output", choices=list(choices), default=None,
                        help=f"output format: {', '.join(choices)} (default: text)")


@dataclass(frozen=True, slots=True)
class _Commands:
    """Adds subcommands: each gets its handler, and the connection flags unless offline."""

    common: argparse.ArgumentParser  # the connection flags, as a parent parser
    top: Any  # the top-level subparsers action

    def add(self, name: str, handler: Handler, help_text: str, parent: Any = None, *,
            offline: bool = False, **options: Any) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = (parent or self.top).add_parser(
            name, parents=[] if offline else [self.common], help=help_text,
            description=help_text, **options)
        sub.set_defaults(handler=handler, offline=offline)
        return sub

    def group(self, name: str, help_text: str, *, dest: str, metavar: str) -> Any:
        """A command that only names a kind (``get rollout``, ``set image``)."""
        parser = self.top.add_parser(name, help=help_text, description=help_text)
        return parser.add_subparsers(dest=dest, required=True, metavar=metavar,
                                     parser_class=_Parser)


def build_parser(prog: str = PROGRAM) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _connection_flags(common)
    parser = _Parser(prog=prog, parents=[common],
                     description="Operate shiftd (and Argo Rollouts) canary Rollouts; also "
                                 "installed as kubectl-shift, so `kubectl shift ...` works.")
    commands = _Commands(common, parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser))
    _operator_commands(commands)
    _reading_commands(commands)
    _plan_and_lint_commands(commands)
    _analyze_command(commands)
    commands.add("version", cmd_version, "Print the version", offline=True)
    completion = commands.add("completion", _cmd_completion,
                              "Print a shell completion script: "
                              "source <(shiftctl completion bash)", offline=True)
    completion.add_argument("shell", choices=["bash", "zsh"])
    return parser


async def _cmd_completion(run: Invocation) -> int:
    run.out.write(completion_script(build_parser(), shell=run.args.shell, program=PROGRAM))
    return EXIT_OK


def _operator_commands(commands: _Commands) -> None:
    promote = commands.add("promote", cmd_promote, "Promote a rollout to its next step")
    promote.add_argument("name", metavar="ROLLOUT_NAME")
    promote.add_argument("--full", action="store_true",
                         help="skip the remaining steps, pauses and analysis")
    for name, action, verb, help_text in (
        ("abort", abort_rollout, "aborted", "Abort a rollout: back to the stable version"),
        ("pause", pause_rollout, "paused", "Pause a rollout (spec.paused)"),
    ):
        sub = commands.add(name, each(action, verb), help_text)
        sub.add_argument("names", nargs="+", metavar="ROLLOUT_NAME")
    retry = commands.add("rollout", each(retry_rollout, "retried"), "Retry an aborted rollout",
                         commands.group("retry", "Retry an aborted rollout", dest="kind",
                                        metavar="rollout"),
                         aliases=["ro", "rollouts"])
    retry.add_argument("names", nargs="+", metavar="ROLLOUT_NAME")
    restart = commands.add("restart", cmd_restart, "Restart the pods of a rollout")
    restart.add_argument("name", metavar="ROLLOUT_NAME")
    restart.add_argument("-i", "--in", dest="delay", type=str, default=None,
                         help="time before the restart (e.g. 30s, 5m)")
    image = commands.add("image", cmd_set_image, "Update the image of a rollout's containers",
                         commands.group("set", "Update a rollout's spec", dest="what",
                                        metavar="image"))
    image.add_argument("name", metavar="ROLLOUT_NAME")
    image.add_argument("assignment", metavar="CONTAINER=IMAGE", type=_image_assignment,
                       help="container name ('*' for all) and its new image")
    undo = commands.add("undo", cmd_undo, "Roll back to an earlier revision's pod template")
    undo.add_argument("name", metavar="ROLLOUT_NAME")
    undo.add_argument("--to-revision", type=_non_negative, default=0,
                      help="the revision to roll back to (default: the previous one)")


def _reading_commands(commands: _Commands) -> None:
    get = commands.add("rollout", cmd_get,
                       "Show a rollout: its summary and the tree revision -> ReplicaSet -> "
                       "pods, and its AnalysisRuns",
                       commands.group("get", "Show a rollout", dest="kind", metavar="rollout"),
                       aliases=["ro", "rollouts"])
    get.add_argument("name", metavar="ROLLOUT_NAME")
    get.add_argument("-w", "--watch", action="store_true",
                     help="redraw on every change (Ctrl-C to stop)")
    get.add_argument("--timeout-seconds", type=float, default=0.0,
                     help="with --watch: stop after this many seconds")
    get.add_argument("--no-color", action="store_true", help="no colours, even on a terminal")
    _output_flag(get, ("json", "yaml"))
    listing = commands.add("rollouts", cmd_list, "List the rollouts of a namespace",
                           commands.group("list", "List rollouts", dest="kind",
                                          metavar="rollouts"),
                           aliases=["ro", "rollout"])
    listing.add_argument("-A", "--all-namespaces", action="store_true",
                         help="list the rollouts of every namespace")
    _output_flag(listing, ("json", "yaml"))
    status = commands.add("status", cmd_status,
                          "Watch a rollout until Healthy (exit 0), Degraded (1) or timeout (2)")
    status.add_argument("name", metavar="ROLLOUT_NAME")
    status.add_argument("-t", "--timeout", type=_timeout, default=0.0,
                        help="how long to watch, e.g. 60s or 5m (default 0: forever)")
    status.add_argument("-w", "--watch", action=argparse.BooleanOptionalAction, default=True,
                        help="watch until done (default); --no-watch prints the status once")
    shard = commands.add("shard", cmd_shard,
                         "Show which shard of a sharded shiftd owns a rollout")
    shard.add_argument("name", metavar="ROLLOUT_NAME")
    shard.add_argument("--lease-namespace", default="shiftd",
                       help="where the shard Leases are (default: shiftd)")
    shard.add_argument("--lease-prefix", default="shiftd-shard-",
                       help="the shard Leases' name prefix (default: shiftd-shard-)")
    shard.add_argument("--at", type=_instant, default=None, metavar="TIME",
                       help="judge the Leases as of this RFC 3339 instant (default: now)")


def _plan_and_lint_commands(commands: _Commands) -> None:
    plan = commands.add("plan", cmd_plan,
                        "Show what shiftd will do with a Rollout, offline: the whole timeline, "
                        "or with --state the next action and why", offline=True)
    plan.add_argument("-f", "--filename", dest="filenames", action="append", required=True,
                      metavar="FILE", help="the Rollout, and its Services, VirtualService, "
                      "AnalysisTemplates (repeatable; - for stdin)")
    plan.add_argument("--state", action="append", metavar="FILE",
                      help="observed state as `kubectl get -o yaml` prints it: the Rollout "
                      "with its status, ReplicaSets, optionally Services, VirtualService, "
                      "DestinationRule, AnalysisRuns, Pods (repeatable)")
    plan.add_argument("--now", type=_instant, default=None,
                      help="with --state: the time to plan at (default: now)")
    _output_flag(plan, ("table", "json", "yaml"))
    lint_parser = commands.add("lint", cmd_lint,
                               "Check Rollouts and AnalysisTemplates offline against what "
                               "shiftd runs: one line per problem with the path of its field; "
                               "exit 1 if any", offline=True)
    lint_parser.add_argument("-f", "--filename", dest="filenames", action="append",
                             required=True, metavar="FILE",
                             help="manifests to check, with the Services, VirtualServices and "
                             "templates they refer to (repeatable; - for stdin)")
    lint_parser.add_argument("--no-references", action="store_true",
                             help="do not check references (by default, one missing from the "
                             "given files is a note, one contradicting them a problem)")


def _analyze_command(commands: _Commands) -> None:
    analyze = commands.add("analyze", cmd_analyze,
                           "Run an AnalysisTemplate's metrics once against the live providers, "
                           "or with --from/--to replay them over a past window (Prometheus); "
                           "exit 0 if the verdict is Successful, 1 otherwise", offline=True)
    analyze.add_argument("-f", "--filename", dest="filenames", action="append", required=True,
                         metavar="FILE", help="AnalysisTemplates, ClusterAnalysisTemplates or "
                         "an AnalysisRun; several merge into one run (repeatable; - for stdin)")
    analyze.add_argument("--arg", dest="args", action="append", default=[],
                         type=_arg_assignment, metavar="NAME=VALUE",
                         help="a value for one of the templates' args (repeatable)")
    analyze.add_argument("--prometheus-address", default=None, metavar="URL",
                         help="send every Prometheus query here instead of the metric's "
                         "address (e.g. a kubectl port-forward)")
    analyze.add_argument("--from", dest="from_", default=None, metavar="TIME",
                         help="backtest from TIME: RFC 3339 (2024-05-01T12:00:00Z) or "
                         "now-7d, now-90m, now-1d12h")
    analyze.add_argument("--to", default=None, metavar="TIME",
                         help="backtest until TIME (default: now); same forms as --from")
    _output_flag(analyze, ("table", "json"))
