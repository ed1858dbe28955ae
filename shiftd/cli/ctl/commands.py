"""What each ``shiftctl`` command does, one coroutine per command over an ``Invocation``.

Operator actions send exactly what ``kubectl argo rollouts`` sends (``operations``); the
reading commands draw the read models of :mod:`shiftd.views` (``view``, ``render``); the
offline ones (``plan``, ``lint``, ``analyze``, ``version``) never load a kubeconfig.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import anyio

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
    PROGRAM,
    CommandError,
    Obj,
    UsageError,
)
from shiftd.cli.ctl.files import load_manifests
from shiftd.cli.ctl.invocation import Handler, Invocation
from shiftd.cli.ctl.lint import LINTED_KINDS, find_crd_dir, lint, load_schemas
from shiftd.cli.ctl.operations import (
    get_rollout,
    is_done,
    promote_rollout,
    restart_rollout,
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
from shiftd.cli.ctl.shard import owner_of
from shiftd.cli.ctl.view import read_view, watch_views
from shiftd.decide.analysis.backtest import parse_instant
from shiftd.kube.resources import LEASE, ROLLOUT
from shiftd.model.durations import parse_duration
from shiftd.runtime.sharding import SHARD_LABEL
from shiftd.views import RolloutObjects

__all__ = [
    "cmd_analyze",
    "cmd_get",
    "cmd_lint",
    "cmd_list",
    "cmd_plan",
    "cmd_promote",
    "cmd_restart",
    "cmd_set_image",
    "cmd_shard",
    "cmd_status",
    "cmd_undo",
    "cmd_version",
    "each",
]


# --- operator actions --------------------------------------------------------------------------

async def cmd_promote(run: Invocation) -> int:
    rollout = await promote_rollout(run.kube, namespace=run.namespace, name=run.args.name,
                                    full=run.args.full)
    verb = "fully promoted" if run.args.full else "promoted"
    run.say(f"rollout '{rollout['metadata']['name']}' {verb}")
    return EXIT_OK


def each(action: Callable[..., Awaitable[Obj]], verb: str) -> Handler:
    async def command(run: Invocation) -> int:
        for name in run.args.names:
            rollout = await action(run.kube, namespace=run.namespace, name=name)
            run.say(f"rollout '{rollout['metadata']['name']}' {verb}")
        return EXIT_OK
    return command


async def cmd_restart(run: Invocation) -> int:
    delay = run.args.delay
    at = datetime.now(UTC) + timedelta(seconds=parse_duration(delay) if delay else 0)
    rollout = await restart_rollout(run.kube, namespace=run.namespace, name=run.args.name,
                                    at=at)
    run.say(f"rollout '{rollout['metadata']['name']}' restarts in {delay or '0s'}")
    return EXIT_OK


async def cmd_set_image(run: Invocation) -> int:
    container, image = run.args.assignment
    updated = await set_rollout_image(run.kube, namespace=run.namespace, name=run.args.name,
                                      container=container, image=image)
    run.say(f'{str(updated.get("kind", "rollout")).lower()} "{updated["metadata"]["name"]}" '
            "image updated")
    return EXIT_OK


async def cmd_undo(run: Invocation) -> int:
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


async def cmd_get(run: Invocation) -> int:
    if not run.args.watch:
        view = await read_view(run.kube, namespace=run.namespace, name=run.args.name,
                               mesh=run.mesh)
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
        await watch_views(run.kube, namespace=run.namespace, name=run.args.name, on_view=draw,
                          mesh=run.mesh)
    return EXIT_OK


async def cmd_list(run: Invocation) -> int:
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


async def cmd_shard(run: Invocation) -> int:
    """Which shard owns a Rollout (exit 1 when no shard is live)."""
    leases, _ = await run.kube.list(LEASE, run.args.lease_namespace,
                                    label_selector=f"{SHARD_LABEL}=true")
    found = owner_of(f"{run.namespace}/{run.args.name}", leases,
                     prefix=run.args.lease_prefix, now=run.args.at or datetime.now(UTC))
    if found.shard is None:
        raise CommandError(f"no live shard (Leases {run.args.lease_prefix}* in namespace "
                           f"{run.args.lease_namespace}) owns rollout '{found.key}'")
    run.say(f"rollout '{found.key}' is owned by shard {found.shard} (held by {found.holder})")
    return EXIT_OK


async def cmd_status(run: Invocation) -> int:
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

async def cmd_plan(run: Invocation) -> int:
    manifests = load_manifests(run.args.filenames)
    if run.args.state is None:
        rollout, timeline = plan_timeline(manifests)
        if run.args.output in ("json", "yaml"):
            run.emit(timeline_document(timeline, rollout=rollout))
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


async def cmd_lint(run: Invocation) -> int:
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


async def cmd_analyze(run: Invocation) -> int:
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


async def cmd_version(run: Invocation) -> int:
    run.say(f"{PROGRAM} {shiftd.__version__}")
    return EXIT_OK

