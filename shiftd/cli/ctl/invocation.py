"""One run of a ``shiftctl`` command: its parsed arguments, streams and (maybe) a client.

Every command is a coroutine ``Handler`` over an ``Invocation``; those that talk to the
cluster reach the client through ``kube``, the offline ones never load one. ``mesh`` is the
client of the API server holding Istio's objects: a separate mesh cluster's when
``--mesh-kubeconfig`` or ``--mesh-context`` is given, else the same as ``kube``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TextIO

import yaml

from shiftd.kube.client import KubeClient

__all__ = ["Handler", "Invocation"]


@dataclass(frozen=True, slots=True)
class Invocation:
    client: KubeClient | None  # None for the offline commands
    namespace: str
    args: argparse.Namespace
    out: TextIO
    err: TextIO
    mesh_client: KubeClient | None = None  # a separate mesh cluster's, when one is given

    def say(self, line: str) -> None:
        print(line, file=self.out)

    @property
    def kube(self) -> KubeClient:
        assert self.client is not None, "an offline command asked for the cluster"
        return self.client

    @property
    def mesh(self) -> KubeClient:
        """The client for VirtualServices and DestinationRules."""
        return self.mesh_client or self.kube

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


Handler = Callable[[Invocation], Awaitable[int]]

