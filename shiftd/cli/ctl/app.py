"""``shiftctl`` (and ``kubectl shift``): the entry point, and the kubeconfig it reads.

``main`` parses the command line (:mod:`shiftd.cli.ctl.parser`) and runs the command's
handler (:mod:`shiftd.cli.ctl.commands`) over an ``Invocation``; those that talk to the
cluster get a ``KubeClient`` from the kubeconfig (kubectl's flags: ``--kubeconfig``,
``--context``, ``-n``, ``-A``; ``--mesh-kubeconfig`` and ``--mesh-context`` for Istio's
objects kept on a separate mesh cluster, as shiftd's ``mesh`` settings), the offline ones
(``plan``, ``lint``, ``analyze``, ``version``, ``completion``) never load one (``analyze``
talks to metric providers only).
Failures are one line on stderr with exit 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TextIO

import anyio
import yaml
from kubernetes_asyncio.config.config_exception import ConfigException

from shiftd.cli.ctl.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    PROGRAM,
    CommandError,
    UsageError,
    one_line,
)
from shiftd.cli.ctl.invocation import Handler, Invocation
from shiftd.cli.ctl.parser import build_parser
from shiftd.decide.rollout.operator import OperatorError
from shiftd.kube.client import KubeClient
from shiftd.kube.errors import KubeError

__all__ = ["PROGRAM", "build_parser", "context_namespace", "main"]


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
        return await handler(Invocation(client=None, namespace=namespace, args=args, out=out,
                                         err=err))
    async with AsyncExitStack() as clients:
        client = await clients.enter_async_context(await _client(
            getattr(args, "kubeconfig", None), getattr(args, "context", None)))
        mesh_kubeconfig = getattr(args, "mesh_kubeconfig", None)
        mesh_context = getattr(args, "mesh_context", None)
        mesh = None
        if mesh_kubeconfig or mesh_context:
            mesh = await clients.enter_async_context(await _client(
                mesh_kubeconfig, mesh_context, what="mesh kubeconfig"))
        return await handler(Invocation(client=client, namespace=namespace, args=args,
                                         out=out, err=err, mesh_client=mesh))


async def _client(kubeconfig: str | None, context: str | None, *,
                  what: str = "kubeconfig") -> KubeClient:
    try:
        return await KubeClient.from_settings(kubeconfig=kubeconfig, context=context,
                                              in_cluster=False, qps=50.0, burst=100)
    except (ConfigException, OSError, ValueError) as error:
        raise CommandError(f"cannot load {what}: {error}") from error


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
    for flag, path in (("kubeconfig", kubeconfig),
                       ("mesh kubeconfig", getattr(args, "mesh_kubeconfig", None))):
        if not args.offline and path and not Path(path).expanduser().is_file():
            print(f"error: {flag} {path} not found", file=err)
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
