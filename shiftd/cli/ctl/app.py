"""``shiftctl`` (and ``kubectl shift``): the command line, its parser and its entry point.

Each command is a small coroutine over an ``_Invocation``; those that talk to the cluster get
a ``KubeClient`` from the kubeconfig (kubectl's flags: ``--kubeconfig``, ``--context``,
``-n``, ``-A``), the offline ones (``plan``, ``lint``, ``analyze``, ``version``,
``completion``) never load one (``analyze`` talks to metric providers only). Failures are one
line on stderr with exit 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TextIO

import anyio
import yaml
from kubernetes_asyncio.config.config_exception import ConfigException

import shiftd
from shiftd.cli.ctl.analyze import (
    exit_code,
    load_analysis,
    render_report,
    report_document,
    run_analysis,
)
from shiftd.cli.ctl.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    CommandError,
    Obj,
    UsageError,
    one_line,
)
from shiftd.cli.ctl.completion import completion_script
from shiftd.cli.ctl.files import load_manifests
from shiftd.cli.ctl.lint import LINTED_KINDS, find_crd_dir, lint, load_schemas
from shiftd.cli.ctl.operations import (
    abort_rollout,
    get_rollout,
    is_done,
    pause_rollout,
    promote_rollout,
    restart_rollout,
    retry_rollout,
    set_rollout_image,
    undo_rollout,
    wait_for_rollout,
)
from shiftd.cli.ctl.planning import (
    next_document,
    plan_next,
    plan_timeline,
    render_next,
    render_timeline,
    timeline_document,
)
from shiftd.cli.ctl.render import render_list, render_rollout
from shiftd.cli.ctl.view import read_view, watch_views
from shiftd.decide.analysis.backtest import parse_instant
from shiftd.decide.rollout.operator import OperatorError
from shiftd.kube.client import KubeClient
from shiftd.kube.errors import KubeError
from shiftd.kube.resources import ROLLOUT
from shiftd.model.durations import parse_duration
from shiftd.views import RolloutObjects

__all__ = ["PROGRAM", "build_parser", "context_namespace", "main"]

PROGRAM = "shiftctl"


@dataclass(frozen=True, slots=True)
class _Invocation:
    client: KubeClient | None  # None for the offline commands
    namespace: str
    args: argparse.Namespace
    out: TextIO
    err: TextIO

    def say(self, line: str) -> None:
        print(line, file=self.out)

    @property
    def kube(self) -> KubeClient:
        assert self.client is not None, "an offline command asked for the cluster"
        return self.client

    @property
    def colour(self) -> bool:
        if getattr(self.args, "no_color", False) or os.environ.get("NO_COLOR"):
            return False
        if os.environ.get("TERM") == "dumb":
            return False
        return bool(getattr(self.out, "isatty", lambda: False)())

    def emit(self, document: Any) -> None:
        """Write ``document`` as ``-o json`` or ``-o yaml`` asked."""
        if self.args.output == "json":
            self.out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        else:
            self.out.write(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))


Handler = Callable[[_Invocation], Awaitable[int]]


# --- operator actions --------------------------------------------------------------------------

async def _cmd_promote(run: _Invocation) -> int:
    rollout = await promote_rollout(run.kube, namespace=run.namespace, name=run.args.name,
                                    full=run.args.full)
    verb = "fully promoted" if run.args.full else "promoted"
    run.say(f"rollout '{rollout['metadata']['name']}' {verb}")
    return EXIT_OK


def _each(action: Callable[..., Awaitable[Obj]], verb: str) -> Handler:
    async def command(run: _Invocation) -> int:
        for name in run.args.names:
            rollout = await action(run.kube, namespace=run.namespace, name=name)
            run.say(f"rollout '{rollout['metadata']['name']}' {verb}")
        return EXIT_OK
    return command


async def _cmd_restart(run: _Invocation) -> int:
    delay = run.args.delay
    at = datetime.now(UTC) + timedelta(seconds=parse_duration(delay) if delay else 0)
    rollout = await restart_rollout(run.kube, namespace=run.namespace, name=run.args.name,
                                    at=at)
    run.say(f"rollout '{rollout['metadata']['name']}' restarts in {delay or '0s'}")
    return EXIT_OK


async def _cmd_set_image(run: _Invocation) -> int:
    container, image = run.args.assignment
    updated = await set_rollout_image(run.kube, namespace=run.namespace, name=run.args.name,
                                      container=container, image=image)
    run.say(f'{str(updated.get("kind", "rollout")).lower()} "{updated["metadata"]["name"]}" '
            "image updated")
    return EXIT_OK


async def _cmd_undo(run: _Invocation) -> int:
    undo = await undo_rollout(run.kube, namespace=run.namespace, name=run.args.name,
                              to_revision=run.args.to_revision)
    if undo.json_patch is None:
        run.say("skipped rollback (current template already matches revision "
                f"{undo.revision})")
    else:
        run.say(f"rollout '{run.args.name}' undo")
    return EXIT_OK


# --- reading -----------------------------------------------------------------------------------

def _view_document(view: RolloutObjects) -> Obj:
    return {"rollout": view.rollout, "replicaSets": list(view.replica_sets),
            "pods": list(view.pods), "analysisRuns": list(view.analysis_runs),
            "actualWeight": view.actual_weight}


async def _cmd_get(run: _Invocation) -> int:
    if not run.args.watch:
        view = await read_view(run.kube, namespace=run.namespace, name=run.args.name)
        if run.args.output:
            run.emit(_view_document(view))
        else:
            run.out.write(render_rollout(view, now=datetime.now(UTC), colour=run.colour))
        return EXIT_OK
    clear = run.out.isatty() if hasattr(run.out, "isatty") else False

    def draw(view: RolloutObjects) -> None:
        if run.args.output:
            run.out.write(json.dumps(_view_document(view), ensure_ascii=False) + "\n")
        else:
            if clear:  # redraw in place, as the plugin does
                run.out.write("\x1b[H\x1b[2J\x1b[0;0H")
            run.out.write(render_rollout(view, now=datetime.now(UTC), colour=run.colour))
            if not clear:
                run.out.write("\n")
        run.out.flush()

    timeout = run.args.timeout_seconds
    with anyio.move_on_after(timeout if timeout > 0 else math.inf):
        await watch_views(run.kube, namespace=run.namespace, name=run.args.name, on_view=draw)
    return EXIT_OK


async def _cmd_list(run: _Invocation) -> int:
    namespace = None if run.args.all_namespaces else run.namespace
    items, _ = await run.kube.list(ROLLOUT, namespace)
    if run.args.output:
        run.emit({"apiVersion": "v1", "kind": "List", "items": items})
        return EXIT_OK
    if not items:
        where = "any namespace" if namespace is None else f"namespace \"{namespace}\""
        print(f"No resources found in {where}.", file=run.err)
        return EXIT_OK
    run.out.write(render_list(items, all_namespaces=namespace is None))
    return EXIT_OK


async def _cmd_status(run: _Invocation) -> int:
    if not run.args.watch:
        rollout = await get_rollout(run.kube, namespace=run.namespace, name=run.args.name)
        code, phase, message = is_done(rollout)
        run.say(phase if phase in ("Healthy", "Degraded") or not message
                else f"{phase} - {message}")
        if code == EXIT_FAILED:
            raise CommandError(f"The rollout is in a degraded state with message: {message}")
        return EXIT_OK
    timeout = run.args.timeout
    with anyio.move_on_after(timeout if timeout > 0 else math.inf):
        code, _, message = await wait_for_rollout(
            run.kube, namespace=run.namespace, name=run.args.name, on_change=run.say)
        if code == EXIT_FAILED:
            raise CommandError(f"The rollout is in a degraded state with message: {message}")
        return code
    print("Rollout status watch exceeded timeout", file=run.err)
    return EXIT_TIMEOUT


# --- offline -----------------------------------------------------------------------------------

async def _cmd_plan(run: _Invocation) -> int:
    manifests = load_manifests(run.args.filenames)
    if run.args.state is None:
        rollout, timeline = plan_timeline(manifests)
        if run.args.output in ("json", "yaml"):
            run.emit(timeline_document(timeline))
        else:
            run.out.write(render_timeline(rollout, timeline))
        return EXIT_OK
    state = load_manifests(run.args.state)
    now = run.args.now or datetime.now(UTC)
    planned = plan_next(manifests, state, now=now)
    if run.args.output in ("json", "yaml"):
        run.emit(next_document(planned))
    else:
        run.out.write(render_next(planned))
    return EXIT_OK


async def _cmd_lint(run: _Invocation) -> int:
    manifests = load_manifests(run.args.filenames)
    crd_dir = find_crd_dir()
    report = lint(manifests,
                  schemas=load_schemas(crd_dir) if crd_dir is not None else None,
                  check_references=not run.args.no_references)
    for problem in report.problems:
        run.say(str(problem))
    for note in report.notes:
        print(f"note: {note}", file=run.err)
    checked = sum(1 for m in manifests if m.kind in LINTED_KINDS)
    if report.problems:
        count = len(report.problems)
        print(f"error: {count} problem{'s' if count != 1 else ''} in {checked} "
              f"object{'s' if checked != 1 else ''}", file=run.err)
        return EXIT_FAILED
    print(f"{checked} object{'s' if checked != 1 else ''} checked, no problems", file=run.err)
    return EXIT_OK


async def _cmd_analyze(run: _Invocation) -> int:
    args = run.args
    if args.to is not None and args.from_ is None:
        raise UsageError("--to needs --from")
    now = datetime.now(UTC).replace(microsecond=0)
    window = None
    if args.from_ is not None:
        try:
            start = parse_instant(args.from_, now=now)
            end = parse_instant(args.to, now=now) if args.to is not None else now
        except ValueError as error:
            raise UsageError(str(error)) from None
        if start >= end:
            raise UsageError(f"--from ({start:%Y-%m-%dT%H:%M:%SZ}) must be before --to "
                             f"({end:%Y-%m-%dT%H:%M:%SZ})")
        if end > now:
            raise UsageError("--to is in the future: a backtest replays the past")
        window = (start, end)
    analysis = load_analysis(args.filenames, args=args.args,
                             prometheus_address=args.prometheus_address)
    report = await run_analysis(analysis, window=window, clock=lambda: datetime.now(UTC))
    if args.output == "json":
        run.emit(report_document(report))
    else:
        run.out.write(render_report(report))
    return exit_code(report)


async def _cmd_version(run: _Invocation) -> int:
    run.say(f"{PROGRAM} {shiftd.__version__}")
    return EXIT_OK


async def _cmd_completion(run: _Invocation) -> int:
    run.out.write(completion_script(build_parser(), shell=run.args.shell, program=PROGRAM))
    return EXIT_OK


# --- argument parsing --------------------------------------------------------------------------

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
    parser.add_argument("-n", "--namespace", default=argparse.SUPPRESS,
                        help="namespace (default: the context's namespace, else 'default')")


def _output_flag(parser: argparse.ArgumentParser, choices: Sequence[str]) -> None:
    parser.add_argument("-o", "--output", choices=list(choices), default=None,
                        help=f"output format: {', '.join(choices)} (default: text)")


def build_parser(prog: str = PROGRAM) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _connection_flags(common)
    parser = _Parser(prog=prog, parents=[common],
                     description="Operate shiftd (and Argo Rollouts) canary Rollouts; also "
                                 "installed as kubectl-shift, so `kubectl shift ...` works.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)

    def command(name: str, handler: Handler, help_text: str, parent: Any = commands, *,
                offline: bool = False, **options: Any) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(
            name, parents=[] if offline else [common], help=help_text,
            description=help_text, **options)
        sub.set_defaults(handler=handler, offline=offline)
        return sub

    promote = command("promote", _cmd_promote, "Promote a rollout to its next step")
    promote.add_argument("name", metavar="ROLLOUT_NAME")
    promote.add_argument("--full", action="store_true",
                         help="skip the remaining steps, pauses and analysis")

    for name, action, verb, help_text in (
        ("abort", abort_rollout, "aborted", "Abort a rollout: back to the stable version"),
        ("pause", pause_rollout, "paused", "Pause a rollout (spec.paused)"),
    ):
        sub = command(name, _each(action, verb), help_text)
        sub.add_argument("names", nargs="+", metavar="ROLLOUT_NAME")

    retry = commands.add_parser("retry", help="Retry an aborted rollout",
                                description="Retry an aborted rollout")
    retry_kinds = retry.add_subparsers(dest="kind", required=True, metavar="rollout",
                                       parser_class=_Parser)
    retry_rollout_parser = command("rollout", _each(retry_rollout, "retried"),
                                   "Retry an aborted rollout", parent=retry_kinds,
                                   aliases=["ro", "rollouts"])
    retry_rollout_parser.add_argument("names", nargs="+", metavar="ROLLOUT_NAME")

    restart = command("restart", _cmd_restart, "Restart the pods of a rollout")
    restart.add_argument("name", metavar="ROLLOUT_NAME")
    restart.add_argument("-i", "--in", dest="delay", type=str, default=None,
                         help="time before the restart (e.g. 30s, 5m)")

    set_parser = commands.add_parser("set", help="Update a rollout's spec",
                                     description="Update a rollout's spec")
    set_kinds = set_parser.add_subparsers(dest="what", required=True, metavar="image",
                                          parser_class=_Parser)
    image = command("image", _cmd_set_image, "Update the image of a rollout's containers",
                    parent=set_kinds)
    image.add_argument("name", metavar="ROLLOUT_NAME")
    image.add_argument("assignment", metavar="CONTAINER=IMAGE", type=_image_assignment,
                       help="container name ('*' for all) and its new image")

    undo = command("undo", _cmd_undo, "Roll back to an earlier revision's pod template")
    undo.add_argument("name", metavar="ROLLOUT_NAME")
    undo.add_argument("--to-revision", type=_non_negative, default=0,
                      help="the revision to roll back to (default: the previous one)")

    get = commands.add_parser("get", help="Show a rollout", description="Show a rollout")
    get_kinds = get.add_subparsers(dest="kind", required=True, metavar="rollout",
                                   parser_class=_Parser)
    get_rollout_parser = command("rollout", _cmd_get,
                                 "Show a rollout: its summary and the tree revision -> "
                                 "ReplicaSet -> pods, and its AnalysisRuns",
                                 parent=get_kinds, aliases=["ro", "rollouts"])
    get_rollout_parser.add_argument("name", metavar="ROLLOUT_NAME")
    get_rollout_parser.add_argument("-w", "--watch", action="store_true",
                                    help="redraw on every change (Ctrl-C to stop)")
    get_rollout_parser.add_argument("--timeout-seconds", type=float, default=0.0,
                                    help="with --watch: stop after this many seconds")
    get_rollout_parser.add_argument("--no-color", action="store_true",
                                    help="no colours, even on a terminal")
    _output_flag(get_rollout_parser, ("json", "yaml"))

    list_parser = commands.add_parser("list", help="List rollouts",
                                      description="List rollouts")
    list_kinds = list_parser.add_subparsers(dest="kind", required=True, metavar="rollouts",
                                            parser_class=_Parser)
    list_rollouts = command("rollouts", _cmd_list, "List the rollouts of a namespace",
                            parent=list_kinds, aliases=["ro", "rollout"])
    list_rollouts.add_argument("-A", "--all-namespaces", action="store_true",
                               help="list the rollouts of every namespace")
    _output_flag(list_rollouts, ("json", "yaml"))

    status = command("status", _cmd_status,
                     "Watch a rollout until Healthy (exit 0), Degraded (1) or timeout (2)")
    status.add_argument("name", metavar="ROLLOUT_NAME")
    status.add_argument("-t", "--timeout", type=_timeout, default=0.0,
                        help="how long to watch, e.g. 60s or 5m (default 0: forever)")
    status.add_argument("-w", "--watch", action=argparse.BooleanOptionalAction, default=True,
                        help="watch until done (default); --no-watch prints the status once")

    plan = command("plan", _cmd_plan,
                   "Show what shiftd will do with a Rollout, offline: the whole timeline, or "
                   "with --state the next action and why", offline=True)
    plan.add_argument("-f", "--filename", dest="filenames", action="append", required=True,
                      metavar="FILE", help="the Rollout, and its Services, VirtualService, "
                      "AnalysisTemplates (repeatable; - for stdin)")
    plan.add_argument("--state", action="append", metavar="FILE",
                      help="observed state as `kubectl get -o yaml` prints it: the Rollout "
                      "with its status, ReplicaSets, optionally Services, VirtualService, "
                      "AnalysisRuns (repeatable)")
    plan.add_argument("--now", type=_instant, default=None,
                      help="with --state: the time to plan at (default: now)")
    _output_flag(plan, ("table", "json", "yaml"))

    lint_parser = command("lint", _cmd_lint,
                          "Check Rollouts and AnalysisTemplates offline against what shiftd "
                          "runs: one line per problem with the path of its field; exit 1 if "
                          "any", offline=True)
    lint_parser.add_argument("-f", "--filename", dest="filenames", action="append",
                             required=True, metavar="FILE",
                             help="manifests to check, with the Services, VirtualServices and "
                             "templates they refer to (repeatable; - for stdin)")
    lint_parser.add_argument("--no-references", action="store_true",
                             help="do not require referenced objects among the given files")

    analyze = command("analyze", _cmd_analyze,
                      "Run an AnalysisTemplate's metrics once against the live providers, or "
                      "with --from/--to replay them over a past window (Prometheus); exit 0 "
                      "if the verdict is Successful, 1 otherwise", offline=True)
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

    version = command("version", _cmd_version, "Print the version", offline=True)
    del version
    completion = command("completion", _cmd_completion,
                         "Print a shell completion script: "
                         "source <(shiftctl completion bash)", offline=True)
    completion.add_argument("shell", choices=["bash", "zsh"])
    return parser


# --- kubeconfig --------------------------------------------------------------------------------

def _kubeconfig_paths(kubeconfig: str | None) -> list[Path]:
    if kubeconfig:
        return [Path(kubeconfig).expanduser()]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def context_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace of the kubeconfig context in use; ``"default"`` when it names none.

    Files merge as kubectl merges them: the first file to set a value wins.
    """
    current, contexts = context, {}
    for path in _kubeconfig_paths(kubeconfig):
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(document, dict):
            continue
        current = current or document.get("current-context")
        for entry in document.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name") not in contexts:
                contexts[entry.get("name")] = entry.get("context") or {}
    namespace = (contexts.get(current) or {}).get("namespace")
    return str(namespace) if namespace else "default"


# --- entry point -------------------------------------------------------------------------------

async def _execute(args: argparse.Namespace, *, namespace: str, out: TextIO,
                   err: TextIO) -> int:
    handler: Handler = args.handler
    if args.offline:
        return await handler(_Invocation(client=None, namespace=namespace, args=args, out=out,
                                         err=err))
    kubeconfig = getattr(args, "kubeconfig", None)
    try:
        client = await KubeClient.from_settings(
            kubeconfig=kubeconfig, context=getattr(args, "context", None), in_cluster=False,
            qps=50.0, burst=100)
    except (ConfigException, OSError, ValueError) as error:
        raise CommandError(f"cannot load kubeconfig: {error}") from error
    async with client:
        return await handler(_Invocation(client=client, namespace=namespace, args=args,
                                         out=out, err=err))


async def _run_command(args: argparse.Namespace, *, namespace: str, out: TextIO,
                       err: TextIO) -> int:
    try:
        return await _execute(args, namespace=namespace, out=out, err=err)
    except UsageError as error:
        print(f"error: {one_line(error)}", file=err)
        return EXIT_USAGE
    except (CommandError, OperatorError, KubeError) as error:
        print(f"error: {one_line(error)}", file=err)
        return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """``shiftctl``; returns the exit code (the console script exits with it)."""
    out, err = sys.stdout, sys.stderr
    # Installed twice: as ``shiftctl`` and as the kubectl plugin ``kubectl-shift``.
    invoked = Path(sys.argv[0]).name if argv is None else PROGRAM
    prog = "kubectl shift" if invoked == "kubectl-shift" else PROGRAM
    try:
        args = build_parser(prog).parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2), already printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    kubeconfig = getattr(args, "kubeconfig", None)
    if not args.offline and kubeconfig and not Path(kubeconfig).expanduser().is_file():
        print(f"error: kubeconfig {kubeconfig} not found", file=err)
        return EXIT_FAILED
    namespace = "default" if args.offline else (
        getattr(args, "namespace", None)
        or context_namespace(kubeconfig, getattr(args, "context", None)))

    async def command() -> int:
        return await _run_command(args, namespace=namespace, out=out, err=err)

    try:
        return anyio.run(command)
    except KeyboardInterrupt:
        # Ctrl-C ends a watch as the plugin's does: quietly, successfully.
        watching = bool(getattr(args, "watch", False)) and args.command == "get"
        if watching:
            out.write("\n")
        return EXIT_OK if watching else 130
