"""``ApiEmulator``: the in-process API server's lifecycle, connection details and test hooks.

It wires a ``Registry`` of built-in kinds and the given CRDs to a ``Store`` and serves them with
``ApiServer`` on a local TCP port, so that kubernetes_asyncio, kubectl and shiftd talk to it
exactly as they would to a kube-apiserver.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio.to_thread
import yaml
from aiohttp import web
from kubernetes_asyncio.client import Configuration

from shiftd.sim.kinds import Registry, builtin_types, load_crd_documents
from shiftd.sim.server import ApiServer, LoggedRequest
from shiftd.sim.store import CRDS, NAMESPACES, Store

_CONTEXT = "shiftd-emulator"
_DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class ApiEmulator:
    """A Kubernetes API server in this process, for tests and ``shiftd demo``.

    Use as ``async with ApiEmulator(crd_files) as api:``; the server listens from entry to exit.
    ``crds`` takes already-parsed CRD documents (e.g. cached by a test session; they are not
    modified) in addition to ``crd_files``. Watches that allow bookmarks get one every
    ``bookmark_interval`` seconds; each resource type keeps its last ``history_limit`` changes
    for watches to resume from.
    """

    def __init__(
        self,
        crd_files: Sequence[Path] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        crds: Sequence[Mapping[str, Any]] = (),
        namespaces: Sequence[str] = _DEFAULT_NAMESPACES,
        bookmark_interval: float = 1.0,
        history_limit: int = 10_000,
        token: str = "shiftd-emulator-token",
    ) -> None:
        self._crd_files = tuple(crd_files)
        self._crds = tuple(crds)
        self._host = host
        self._port = port
        self._namespaces = tuple(namespaces)
        self._token = token
        self.store = Store(Registry(builtin_types()), history_limit=history_limit)
        self._server = ApiServer(self.store, bookmark_interval=bookmark_interval)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    async def __aenter__(self) -> Self:
        documents = list(self._crds)
        if self._crd_files:
            documents += await anyio.to_thread.run_sync(load_crd_documents, self._crd_files)
        registry = self.store.registry
        namespace_type, crd_type = registry.get(NAMESPACES), registry.get(CRDS)
        assert namespace_type is not None and crd_type is not None
        for namespace in self._namespaces:
            self.store.create(namespace_type, None, {"metadata": {"name": namespace}}, "v1")
        for document in documents:
            self.store.create(crd_type, None, dict(document), "v1")
        runner = web.AppRunner(
            self._server.app(), handler_cancellation=True, shutdown_timeout=1.0,
            access_log=None,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._url = f"http://{host}:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.store.close_watches(broken=False)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # --- connection details ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        if self._url is None:
            raise RuntimeError("the emulator is not running; use it as an async context manager")
        return self._url

    def kubeconfig(self) -> dict[str, Any]:
        """A kubeconfig document with one cluster, token user and context (current)."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": _CONTEXT, "cluster": {"server": self.url}}],
            "users": [{"name": _CONTEXT, "user": {"token": self._token}}],
            "contexts": [{"name": _CONTEXT, "context": {
                "cluster": _CONTEXT, "user": _CONTEXT, "namespace": "default"}}],
            "current-context": _CONTEXT,
            "preferences": {},
        }

    def write_kubeconfig(self, path: Path | str) -> Path:
        """Write ``kubeconfig()`` as YAML to ``path`` and return the path."""
        target = Path(path)
        target.write_text(yaml.safe_dump(self.kubeconfig(), sort_keys=False), encoding="utf-8")
        return target

    def configuration(self) -> Configuration:
        """A kubernetes_asyncio client configuration pointing at this server."""
        configuration = Configuration(host=self.url)
        configuration.api_key = {"BearerToken": self._token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return configuration

    # --- test hooks --------------------------------------------------------------------------

    def drop_watches(self) -> None:
        """Break every open watch connection mid-stream, as a restarting server would."""
        self.store.close_watches(broken=True)

    def compact(self) -> None:
        """Forget the watch history: watching from any version before now gets 410 Gone."""
        self.store.compact()

    def fail_next(self, method: str, path_regex: str, status: int) -> None:
        """Answer the next ``method`` request whose path matches with an error ``status``."""
        self._server.fail_next(method, path_regex, status)

    @property
    def request_log(self) -> list[LoggedRequest]:
        """Every request answered so far (method, path, content type, status, watch)."""
        return self._server.request_log
