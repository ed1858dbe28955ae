"""``shiftctl``: the operator's command line, writing what ``kubectl argo rollouts`` writes.

The patches come from :mod:`shiftd.decide.operator`; this module only reads the Rollout,
sends them (status through ``/status``, falling back to the main resource when that answers
404, as the plugin does) and prints the plugin's messages. The ``*_rollout`` coroutines are
the I/O half of each command; the integration harness drives them too, so tests and humans
send the very same requests.

Exit codes: 0 success, 1 a failed operation (one line on stderr), 2 bad usage; ``status``
exits 2 when its ``--timeout`` runs out.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TextIO

import anyio
import yaml
from kubernetes_asyncio.config.config_exception import ConfigException

from shiftd.decide.operator import (
    OperatorError,
    OperatorPatch,
    Undo,
    abort_patch,
    current_set_weight,
    owned_replica_sets,
    pause_patch,
    promote_patch,
    restart_patch,
    resume_patch,
    retry_patch,
    rollout_phase,
    set_image,
    step_progress,
    undo_patch,
)
from shiftd.kube.client import KubeClient
from shiftd.kube.errors import Conflict, Gone, KubeError, NotFound
from shiftd.kube.resources import (
    DEPLOYMENT,
    REPLICA_SET,
    ROLLOUT,
    VIRTUAL_SERVICE,
    ResourceKind,
)
from shiftd.mesh.istio import Destinations, RouteError, observe_weight
from shiftd.model.durations import parse_duration
from shiftd.model.rollout import DEFAULT_REPLICAS, InvalidSpecError, parse_rollout

__all__ = [
    "CommandError",
    "abort_rollout",
    "context_namespace",
    "main",
    "pause_rollout",
    "promote_rollout",
    "render_rollout",
    "restart_rollout",
    "resume_rollout",
    "retry_rollout",
    "send_operator_patch",
    "set_rollout_image",
    "undo_rollout",
    "wait_for_rollout",
]

Obj = dict[str, Any]
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_TIMEOUT = 2  # status: the watch ran out of time
# The plugin retries ``set image`` this many times when the PUT loses a race (409).
SET_IMAGE_ATTEMPTS = 5
_WORKLOAD_KINDS: Mapping[str, ResourceKind] = {"Deployment": DEPLOYMENT,
                                               "ReplicaSet": REPLICA_SET}


class CommandError(Exception):
    """A command failed; the message is the one line shown on stderr."""


def _not_found(name: str, namespace: str) -> CommandError:
    return CommandError(f'rollout "{name}" not found in namespace "{namespace}"')


# --- the I/O half of each command ------------------------------------------------------------

async def get_rollout(client: KubeClient, *, namespace: str, name: str) -> Obj:
    """The Rollout, or ``CommandError`` naming it and its namespace."""
    try:
        return await client.get(ROLLOUT, namespace, name)
    except NotFound:
        raise _not_found(name, namespace) from None


async def send_operator_patch(
    client: KubeClient, *, namespace: str, name: str, patch: OperatorPatch
) -> Obj:
    """Send ``patch`` as the plugin does; returns the Rollout as last written (or read)."""
    spec = patch.spec
    result: Obj | None = None
    try:
        if patch.status is not None:
            try:
                result = await client.patch(ROLLOUT, namespace, name, patch.status,
                                            patch_type="merge", subresource="status")
            except NotFound:
                # No status subresource (Argo v0.9 CRDs): one patch on the main resource.
                spec = patch.unified
        if spec is not None:
            result = await client.patch(ROLLOUT, namespace, name, spec, patch_type="merge")
    except NotFound:
        raise _not_found(name, namespace) from None
    if result is None:
        result = await get_rollout(client, namespace=namespace, name=name)
    return result


async def promote_rollout(
    client: KubeClient, *, namespace: str, name: str, full: bool = False
) -> Obj:
    rollout = await get_rollout(client, namespace=namespace, name=name)
    patch = promote_patch(rollout, full=full)
    if patch.empty:
        return rollout
    return await send_operator_patch(client, namespace=namespace, name=name, patch=patch)


async def abort_rollout(client: KubeClient, *, namespace: str, name: str) -> Obj:
    return await send_operator_patch(client, namespace=namespace, name=name,
                                     patch=abort_patch())


async def retry_rollout(client: KubeClient, *, namespace: str, name: str) -> Obj:
    return await send_operator_patch(client, namespace=namespace, name=name,
                                     patch=retry_patch())


async def pause_rollout(client: KubeClient, *, namespace: str, name: str) -> Obj:
    return await send_operator_patch(client, namespace=namespace, name=name,
                                     patch=pause_patch())


async def resume_rollout(client: KubeClient, *, namespace: str, name: str) -> Obj:
    return await send_operator_patch(client, namespace=namespace, name=name,
                                     patch=resume_patch())


async def restart_rollout(
    client: KubeClient, *, namespace: str, name: str, at: datetime
) -> Obj:
    return await send_operator_patch(client, namespace=namespace, name=name,
                                     patch=restart_patch(at=at))


def _workload_kind(rollout: Mapping[str, Any]) -> tuple[ResourceKind, str] | None:
    ref = (rollout.get("spec") or {}).get("workloadRef")
    if not ref:
        return None
    kind = _WORKLOAD_KINDS.get(str(ref.get("kind")))
    if kind is None:
        raise CommandError(f"workload of type {ref.get('kind')} is not supported")
    return kind, str(ref.get("name"))


async def set_rollout_image(
    client: KubeClient, *, namespace: str, name: str, container: str, image: str
) -> Obj:
    """GET, edit and PUT the Rollout (or the Deployment of its workloadRef), retrying a
    lost race a few times; returns the object written."""
    for attempt in range(SET_IMAGE_ATTEMPTS):
        rollout = await get_rollout(client, namespace=namespace, name=name)
        target_kind, target_name, target = ROLLOUT, name, rollout
        if (rollout.get("spec") or {}).get("workloadRef"):
            # The plugin always treats a workloadRef as a Deployment here.
            ref = rollout["spec"]["workloadRef"]
            target_kind, target_name = DEPLOYMENT, str(ref.get("name"))
            target = await client.get(DEPLOYMENT, namespace, target_name)
        edited = set_image(target, container=container, image=image)
        try:
            return await client.replace(target_kind, namespace, target_name, edited)
        except Conflict:
            if attempt + 1 == SET_IMAGE_ATTEMPTS:
                raise
        except NotFound:
            if target_kind is not ROLLOUT:
                raise
            raise _not_found(name, namespace) from None
    raise AssertionError("unreachable")


def _selector_text(rollout: Mapping[str, Any]) -> str | None:
    labels = (((rollout.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items())) or None


async def owned_replica_sets_of(client: KubeClient, rollout: Mapping[str, Any]) -> list[Obj]:
    namespace = rollout["metadata"]["namespace"]
    items, _ = await client.list(REPLICA_SET, namespace, label_selector=_selector_text(rollout))
    return [dict(rs) for rs in owned_replica_sets(rollout, items)]


async def undo_rollout(
    client: KubeClient, *, namespace: str, name: str, to_revision: int = 0
) -> Undo:
    """Copy an older revision's template back (into the workloadRef object if any)."""
    rollout = await get_rollout(client, namespace=namespace, name=name)
    undo = undo_patch(rollout, await owned_replica_sets_of(client, rollout),
                      to_revision=to_revision)
    if undo.json_patch is None:
        return undo
    workload = _workload_kind(rollout)
    kind, target = workload if workload is not None else (ROLLOUT, name)
    try:
        await client.patch(kind, namespace, target, undo.json_patch, patch_type="json")
    except KubeError as error:
        raise CommandError(f"failed restoring revision {undo.revision}: {error}") from error
    return undo


# --- reading: get, status --------------------------------------------------------------------

def _is_done(rollout: Mapping[str, Any]) -> tuple[int | None, str, str]:
    """``(exit code or None while still going, phase, message)`` for ``status``."""
    phase, message = rollout_phase(rollout)
    if phase == "Healthy":
        return EXIT_OK, phase, message
    if phase == "Degraded":
        return EXIT_FAILED, phase, message
    if (rollout.get("status") or {}).get("abort"):
        # Aborted, and the controller has not yet reported Degraded: it will.
        return EXIT_FAILED, phase, "RolloutAborted: the rollout was aborted"
    return None, phase, message


async def _rollout_versions(
    client: KubeClient, *, namespace: str, name: str, start: Obj
) -> AsyncGenerator[Obj, None]:
    """Every new version of the Rollout, from a watch resumed after it ends (relisting on
    410); raises ``CommandError`` when the Rollout is deleted."""
    version = str(start["metadata"].get("resourceVersion") or "")
    while True:
        try:
            async with aclosing(client.watch(ROLLOUT, namespace,
                                             resource_version=version)) as events:
                async for event in events:
                    version = str(event.object.get("metadata", {}).get("resourceVersion")
                                  or version)
                    if event.type == "BOOKMARK" or event.object["metadata"]["name"] != name:
                        continue
                    if event.type == "DELETED":
                        raise CommandError(f'rollout "{name}" was deleted')
                    yield event.object
        except Gone:
            current = await get_rollout(client, namespace=namespace, name=name)
            version = str(current["metadata"].get("resourceVersion") or "")
            yield current


async def wait_for_rollout(
    client: KubeClient,
    *,
    namespace: str,
    name: str,
    on_change: Callable[[str], None] = lambda line: None,
) -> tuple[int, str, str]:
    """Follow the Rollout until Healthy (exit code 0) or Degraded or aborted (1); returns
    ``(code, phase, message)``. ``on_change`` gets each new "Phase - message" line. Bound it
    with a cancel scope (``anyio.move_on_after``)."""
    last_line = ""

    def report(rollout: Mapping[str, Any]) -> tuple[int | None, str, str]:
        nonlocal last_line
        code, phase, message = _is_done(rollout)
        line = f"{phase} - {message}" if message else phase
        if line != last_line:
            on_change(line)
            last_line = line
        return code, phase, message

    rollout = await get_rollout(client, namespace=namespace, name=name)
    code, phase, message = report(rollout)
    if code is not None:
        return code, phase, message
    async with aclosing(_rollout_versions(client, namespace=namespace, name=name,
                                          start=rollout)) as versions:
        async for rollout in versions:
            code, phase, message = report(rollout)
            if code is not None:
                return code, phase, message
    raise AssertionError("unreachable: the watch only ends by raising")


def render_rollout(
    rollout: Mapping[str, Any], replica_sets: Sequence[Mapping[str, Any]], *, actual_weight: str
) -> str:
    """``get rollout``'s plain text: the header of the plugin's view (no tree yet)."""
    metadata, spec = rollout.get("metadata") or {}, rollout.get("spec") or {}
    status = rollout.get("status") or {}
    phase, message = rollout_phase(rollout)
    lines = [
        f"Name:            {metadata.get('name', '')}",
        f"Namespace:       {metadata.get('namespace', '')}",
        f"Status:          {phase}" + (f" ({message})" if message else ""),
    ]
    if (spec.get("strategy") or {}).get("canary") is not None:
        lines.append("Strategy:        Canary")
        step = step_progress(rollout)
        if step is not None:
            lines.append(f"  Step:          {step}")
        lines.append(f"  SetWeight:     {current_set_weight(rollout)}")
        lines.append(f"  ActualWeight:  {actual_weight}")
    images = _images_with_roles(status, replica_sets)
    if images:
        first, *rest = images
        lines.append(f"Images:          {first}")
        lines.extend(f"                 {entry}" for entry in rest)
    else:
        lines.append("Images:          -")
    desired = spec.get("replicas", DEFAULT_REPLICAS)
    lines += [
        "Replicas:",
        f"  Desired:       {desired}",
        f"  Current:       {status.get('replicas', 0)}",
        f"  Updated:       {status.get('updatedReplicas', 0)}",
        f"  Ready:         {status.get('readyReplicas', 0)}",
        f"  Available:     {status.get('availableReplicas', 0)}",
    ]
    return "\n".join(lines) + "\n"


def _images_with_roles(
    status: Mapping[str, Any], replica_sets: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Images of the ReplicaSets that have pods, tagged stable/canary, sorted by image."""
    stable, current = status.get("stableRS"), status.get("currentPodHash")
    roles: dict[str, set[str]] = {}
    for rs in replica_sets:
        if not (rs.get("spec") or {}).get("replicas"):
            continue
        labels = (rs.get("metadata") or {}).get("labels") or {}
        pod_hash = labels.get("rollouts-pod-template-hash")
        pod_spec = (((rs.get("spec") or {}).get("template") or {}).get("spec")) or {}
        for container in pod_spec.get("containers") or []:
            tags = roles.setdefault(str(container.get("image", "")), set())
            if pod_hash and pod_hash == stable:
                tags.add("stable")
            elif pod_hash and pod_hash == current:
                tags.add("canary")
    return [f"{image} ({', '.join(sorted(tags))})" if tags else image
            for image, tags in sorted(roles.items())]


async def _actual_weight(client: KubeClient, rollout: Obj) -> str:
    """The canary weight the VirtualService routes now, or why it cannot be read."""
    try:
        parsed = parse_rollout(rollout)
    except InvalidSpecError:
        return "-"
    istio = parsed.canary.istio
    if istio is None:
        return "-"
    ref = istio.virtual_services[0]
    rule = istio.destination_rule or {}
    destinations = Destinations(
        canary_service=parsed.canary.canary_service, stable_service=parsed.canary.stable_service,
        canary_subset=rule.get("canarySubsetName"), stable_subset=rule.get("stableSubsetName"))
    try:
        vs = await client.get(VIRTUAL_SERVICE, ref.namespace or parsed.namespace, ref.name)
        return str(observe_weight(vs, ref, destinations))
    except NotFound:
        return f"- (VirtualService {ref.name!r} not found)"
    except RouteError as error:
        return f"- ({error})"


# --- commands --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Invocation:
    client: KubeClient
    namespace: str
    args: argparse.Namespace
    out: TextIO
    err: TextIO

    def say(self, line: str) -> None:
        print(line, file=self.out)


async def _cmd_promote(run: _Invocation) -> int:
    rollout = await promote_rollout(run.client, namespace=run.namespace, name=run.args.name,
                                    full=run.args.full)
    verb = "fully promoted" if run.args.full else "promoted"
    run.say(f"rollout '{rollout['metadata']['name']}' {verb}")
    return EXIT_OK


def _each(action: Callable[..., Awaitable[Obj]], verb: str) -> Callable[[_Invocation],
                                                                          Awaitable[int]]:
    async def command(run: _Invocation) -> int:
        for name in run.args.names:
            rollout = await action(run.client, namespace=run.namespace, name=name)
            run.say(f"rollout '{rollout['metadata']['name']}' {verb}")
        return EXIT_OK
    return command


async def _cmd_restart(run: _Invocation) -> int:
    delay = run.args.delay
    at = datetime.now(UTC) + timedelta(seconds=parse_duration(delay) if delay else 0)
    rollout = await restart_rollout(run.client, namespace=run.namespace, name=run.args.name,
                                    at=at)
    run.say(f"rollout '{rollout['metadata']['name']}' restarts in {delay or '0s'}")
    return EXIT_OK


async def _cmd_set_image(run: _Invocation) -> int:
    container, image = run.args.assignment
    updated = await set_rollout_image(run.client, namespace=run.namespace, name=run.args.name,
                                      container=container, image=image)
    run.say(f'{str(updated.get("kind", "rollout")).lower()} "{updated["metadata"]["name"]}" '
            "image updated")
    return EXIT_OK


async def _cmd_undo(run: _Invocation) -> int:
    undo = await undo_rollout(run.client, namespace=run.namespace, name=run.args.name,
                              to_revision=run.args.to_revision)
    if undo.json_patch is None:
        run.say("skipped rollback (current template already matches revision "
                f"{undo.revision})")
    else:
        run.say(f"rollout '{run.args.name}' undo")
    return EXIT_OK


async def _cmd_get(run: _Invocation) -> int:
    rollout = await get_rollout(run.client, namespace=run.namespace, name=run.args.name)
    replica_sets = await owned_replica_sets_of(run.client, rollout)
    weight = await _actual_weight(run.client, rollout)
    run.out.write(render_rollout(rollout, replica_sets, actual_weight=weight))
    return EXIT_OK


async def _cmd_status(run: _Invocation) -> int:
    if not run.args.watch:
        rollout = await get_rollout(run.client, namespace=run.namespace, name=run.args.name)
        code, phase, message = _is_done(rollout)
        run.say(phase if phase in ("Healthy", "Degraded") or not message
                else f"{phase} - {message}")
        if code == EXIT_FAILED:
            raise CommandError(f"The rollout is in a degraded state with message: {message}")
        return EXIT_OK
    timeout = run.args.timeout
    with anyio.move_on_after(timeout if timeout > 0 else math.inf):
        code, _, message = await wait_for_rollout(
            run.client, namespace=run.namespace, name=run.args.name, on_change=run.say)
        if code == EXIT_FAILED:
            raise CommandError(f"The rollout is in a degraded state with message: {message}")
        return code
    print("Rollout status watch exceeded timeout", file=run.err)
    return EXIT_TIMEOUT


# --- argument parsing ------------------------------------------------------------------------

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


def _connection_flags(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a flag given before the command is not reset by the command's own parser.
    parser.add_argument("--kubeconfig", default=argparse.SUPPRESS,
                        help="path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", default=argparse.SUPPRESS,
                        help="the kubeconfig context to use (default: its current context)")
    parser.add_argument("-n", "--namespace", default=argparse.SUPPRESS,
                        help="namespace (default: the context's namespace, else 'default')")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _connection_flags(common)
    parser = _Parser(prog="shiftctl", parents=[common],
                     description="Operate shiftd (and Argo Rollouts) canary Rollouts.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)

    def command(name: str, handler: Callable[[_Invocation], Awaitable[int]], help_text: str,
                parent: Any = commands, **options: Any) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(name, parents=[common], help=help_text,
                                                         description=help_text, **options)
        sub.set_defaults(handler=handler)
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
    get_rollout_parser = command("rollout", _cmd_get, "Show a rollout's state",
                                 parent=get_kinds, aliases=["ro", "rollouts"])
    get_rollout_parser.add_argument("name", metavar="ROLLOUT_NAME")

    status = command("status", _cmd_status,
                     "Watch a rollout until Healthy (exit 0), Degraded (1) or timeout (2)")
    status.add_argument("name", metavar="ROLLOUT_NAME")
    status.add_argument("-t", "--timeout", type=_timeout, default=0.0,
                        help="how long to watch, e.g. 60s or 5m (default 0: forever)")
    status.add_argument("-w", "--watch", action=argparse.BooleanOptionalAction, default=True,
                        help="watch until done (default); --no-watch prints the status once")
    return parser


# --- kubeconfig ------------------------------------------------------------------------------

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


# --- entry point -----------------------------------------------------------------------------

async def _execute(args: argparse.Namespace, *, namespace: str, out: TextIO,
                   err: TextIO) -> int:
    kubeconfig = getattr(args, "kubeconfig", None)
    try:
        client = await KubeClient.from_settings(
            kubeconfig=kubeconfig, context=getattr(args, "context", None), in_cluster=False,
            qps=50.0, burst=100)
    except (ConfigException, OSError, ValueError) as error:
        raise CommandError(f"cannot load kubeconfig: {error}") from error
    async with client:
        handler: Callable[[_Invocation], Awaitable[int]] = args.handler
        return await handler(_Invocation(client=client, namespace=namespace, args=args,
                                         out=out, err=err))


async def _run_command(args: argparse.Namespace, *, namespace: str, out: TextIO,
                       err: TextIO) -> int:
    try:
        return await _execute(args, namespace=namespace, out=out, err=err)
    except (CommandError, OperatorError, KubeError) as error:
        print(f"error: {_one_line(error)}", file=err)
        return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """``shiftctl``; returns the exit code (the console script exits with it)."""
    out, err = sys.stdout, sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2), already printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    kubeconfig = getattr(args, "kubeconfig", None)
    if kubeconfig and not Path(kubeconfig).expanduser().is_file():
        print(f"error: kubeconfig {kubeconfig} not found", file=err)
        return EXIT_FAILED
    namespace = getattr(args, "namespace", None) or context_namespace(
        kubeconfig, getattr(args, "context", None))

    async def command() -> int:
        return await _run_command(args, namespace=namespace, out=out, err=err)

    try:
        return anyio.run(command)
    except KeyboardInterrupt:
        return 130


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


if __name__ == "__main__":
    sys.exit(main())
