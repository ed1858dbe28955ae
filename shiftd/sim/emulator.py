"""``ApiEmulator``: the in-process API server's lifecycle, connection details and test hooks.

It wires a ``Registry`` of built-in kinds and the given CRDs to a ``Store`` and serves them with
``ApiServer`` on a local TCP port, over HTTP or (``tls=True``) HTTPS with a certificate made at
start, so that kubernetes_asyncio, kubectl and shiftd talk to it exactly as they would to a
kube-apiserver. Given ``users`` (bearer tokens) or ``rbac`` documents, it authenticates every
request and authorizes it by RBAC; the administrator's ``token`` bypasses RBAC. ``stop()``,
``start()`` and ``restart()`` take the server down and bring it back with its data on the same
port, certificate and tokens, as a kube-apiserver restarting over the same etcd.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio.to_thread
import yaml
from aiohttp import web
from kubernetes_asyncio.client import Configuration

from shiftd.sim.faults import FaultInjector
from shiftd.sim.kinds import Registry, builtin_types, load_crd_documents
from shiftd.sim.rbac import Authorizer, EmulatedUser, rbac_documents
from shiftd.sim.server import ApiServer, LoggedRequest
from shiftd.sim.store import CRDS, NAMESPACES, Store
from shiftd.sim.tls import ServingCertificate, make_serving_certificate

_CONTEXT = "shiftd-emulator"
_DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class ApiEmulator:
    """A Kubernetes API server in this process, for tests and ``shiftd demo``.

    Use as ``async with ApiEmulator(crd_files) as api:``; the server listens from entry to exit.
    ``crds`` takes already-parsed CRD documents (e.g. cached by a test session; they are not
    modified) in addition to ``crd_files``. Watches that allow bookmarks get one every
    ``bookmark_interval`` seconds; each resource type keeps its last ``history_limit`` changes
    for watches to resume from.

    ``tls=True`` serves HTTPS with a certificate authority made at start, whose certificate the
    kubeconfig carries. ``users`` maps bearer tokens to users and ``rbac`` (YAML text or parsed
    documents: ClusterRoles, ClusterRoleBindings, Roles, RoleBindings) decides what they may do;
    with either given, every request must carry a known token, and ``token`` is the
    administrator's, which RBAC does not restrict. ``clock`` (RFC 3339 text) gives the
    timestamps the server writes; the system clock by default. ``fault_seed`` seeds the
    fault injector's draws (``faults``).
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
        tls: bool = False,
        users: Mapping[str, EmulatedUser] | None = None,
        rbac: str | Iterable[Mapping[str, Any]] = (),
        clock: Callable[[], str] | None = None,
        fault_seed: int = 0,
    ) -> None:
        self._crd_files = tuple(crd_files)
        self._crds = tuple(crds)
        self._host = host
        self._port = port
        self._namespaces = tuple(namespaces)
        self._token = token
        self.store = Store(Registry(builtin_types()), history_limit=history_limit,
                           **({"clock": clock} if clock is not None else {}))
        documents = rbac_documents(rbac)
        authorizer = None
        if users is not None or documents:
            authorizer = Authorizer.build(admin_token=token, users=users or {},
                                          documents=documents)
        self._server = ApiServer(self.store, bookmark_interval=bookmark_interval,
                                 authorizer=authorizer, fault_seed=fault_seed)
        self._tls = tls
        self._certificate: ServingCertificate | None = None
        self._files: tempfile.TemporaryDirectory[str] | None = None
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
        if self._tls:
            self._certificate = await anyio.to_thread.run_sync(make_serving_certificate)
            self._files = tempfile.TemporaryDirectory(prefix="shiftd-emulator-")
            (Path(self._files.name) / "ca.crt").write_bytes(self._certificate.ca_pem)
        try:
            await self.start()
        except BaseException:
            self._remove_files()
            raise
        return self

    async def start(self) -> None:
        """Serve (again) on the same address, with the same certificate, CA and tokens.

        ``__aenter__`` calls it; after ``stop()`` it brings the server back with its data, as
        a restarted kube-apiserver comes back over the same etcd.
        """
        if self._runner is not None:
            raise RuntimeError("the emulator is already serving")
        runner = web.AppRunner(
            self._server.app(), handler_cancellation=True, shutdown_timeout=1.0,
            access_log=None,
        )
        context = None
        if self._certificate is not None and self._files is not None:
            context = self._certificate.server_context(Path(self._files.name))
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port, ssl_context=context)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = runner.addresses[0][1]  # a restart binds the same port
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._url = f"{'https' if self._tls else 'http'}://{host}:{self._port}"

    async def stop(self, *, lose_history: bool = False) -> None:
        """Stop serving, as a kube-apiserver going down: open watches are cut mid-stream,
        requests in flight are abandoned and new connections refused until ``start()``.

        The objects stay. ``lose_history=True`` also forgets the watch cache's history (a
        restarted server's cache starts at the current version), so a client resuming a watch
        from an older resourceVersion gets 410 Expired and must relist.
        """
        self.store.close_watches(broken=True)
        if lose_history:
            self.store.compact()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def restart(self, *, lose_history: bool = False, downtime: float = 0.0) -> None:
        """``stop(lose_history=...)``, stay down ``downtime`` seconds, then ``start()``."""
        await self.stop(lose_history=lose_history)
        if downtime > 0:
            await anyio.sleep(downtime)
        await self.start()

    @property
    def serving(self) -> bool:
        """Whether the server is accepting connections (False between stop and start)."""
        return self._runner is not None

    def _remove_files(self) -> None:
        if self._files is not None:
            files, self._files = self._files, None
            files.cleanup()

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
        self._remove_files()

    # --- connection details ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        if self._url is None:
            raise RuntimeError("the emulator is not running; use it as an async context manager")
        return self._url

    @property
    def token(self) -> str:
        """The administrator's bearer token (RBAC does not restrict it)."""
        return self._token

    @property
    def ca_pem(self) -> bytes | None:
        """The PEM of the certificate authority that signed the serving certificate (TLS)."""
        return self._certificate.ca_pem if self._certificate is not None else None

    def kubeconfig(self, token: str | None = None) -> dict[str, Any]:
        """A kubeconfig document with one cluster, token user and context (current).

        The user is the administrator unless ``token`` names another (see ``users``); over
        TLS the cluster carries the CA's certificate, so clients verify the server.
        """
        cluster: dict[str, Any] = {"server": self.url}
        if self._certificate is not None:
            cluster["certificate-authority-data"] = base64.b64encode(
                self._certificate.ca_pem).decode("ascii")
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": _CONTEXT, "cluster": cluster}],
            "users": [{"name": _CONTEXT, "user": {"token": token or self._token}}],
            "contexts": [{"name": _CONTEXT, "context": {
                "cluster": _CONTEXT, "user": _CONTEXT, "namespace": "default"}}],
            "current-context": _CONTEXT,
            "preferences": {},
        }

    def write_kubeconfig(self, path: Path | str, token: str | None = None) -> Path:
        """Write ``kubeconfig(token)`` as YAML to ``path`` and return the path."""
        target = Path(path)
        target.write_text(yaml.safe_dump(self.kubeconfig(token), sort_keys=False),
                          encoding="utf-8")
        return target

    def configuration(self, token: str | None = None) -> Configuration:
        """A kubernetes_asyncio client configuration pointing at this server (as the
        administrator unless ``token`` names another user); over TLS it trusts the CA."""
        configuration = Configuration(host=self.url)
        configuration.api_key = {"BearerToken": token or self._token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        if self._files is not None:
            configuration.ssl_ca_cert = str(Path(self._files.name) / "ca.crt")
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
        self._server.faults.fail_next(method, path_regex, status)

    @property
    def faults(self) -> FaultInjector:
        """The fault-injection control: ``api.faults.configure(RequestFaults(0.1), ...)``
        answers a share of requests with errors and breaks watches (see ``sim.faults``);
        ``api.faults.clear()`` stops; ``api.faults.injected`` records what was done."""
        return self._server.faults

    @property
    def request_log(self) -> list[LoggedRequest]:
        """Every request answered so far (method, path, content type, status, watch)."""
        return self._server.request_log
