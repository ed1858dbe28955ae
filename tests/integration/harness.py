"""The cluster an integration test runs against: the in-process API emulator, or a real one.

``async with test_cluster() as cluster:`` gives a fresh namespace on

- the real API server of ``$SHIFTD_TEST_KUBECONFIG`` when that is set (the Argo Rollouts and
  Istio CRDs are installed with server-side apply, the namespace is deleted at the end), or
- an ``ApiEmulator`` started for the test, loaded with the same CRDs (parsed once per session).

The test seeds it from a shared example (``apply_example``), reads objects back, waits for
state with ``wait_for`` (polling under a deadline; never a bare sleep), runs a ``FakeKubelet``
(``async with cluster.kubelet():``) and acts as an operator with exactly the requests
``shiftctl`` sends (``promote``, ``abort``, ...). Everything that owns a task group is an async
context manager the test itself enters: pytest-asyncio runs a fixture's setup and teardown in
different tasks, so none of this may live across a fixture's ``yield``.
"""

from __future__ import annotations

import copy
import functools
import inspect
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import yaml
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client import ApiClient, Configuration

from shiftd.cli import ctl
from shiftd.common.tasks import running
from shiftd.kube.client import KubeClient
from shiftd.kube.errors import Conflict, NotFound
from shiftd.kube.resources import (
    CUSTOM_RESOURCE_DEFINITION,
    NAMESPACE,
    REPLICA_SET,
    ROLLOUT,
    SERVICE,
    SERVICE_ACCOUNT,
    VIRTUAL_SERVICE,
    ResourceKind,
)
from shiftd.sim import (
    ApiEmulator,
    FakeDeployments,
    FakeKubelet,
    default_crd_files,
    flagger_crd_files,
    load_crd_documents,
)
from shiftd.sim.rbac import EmulatedUser
from tests.support.invariants import WATCHED, InvariantMonitor

__all__ = ["Cluster", "default_crds", "example_documents", "flagger_crds", "shared_dir",
           "test_cluster"]

Obj = dict[str, Any]

KUBECONFIG_ENV = "SHIFTD_TEST_KUBECONFIG"
# On a real API server: a kubeconfig of an identity bound only to deploy/rbac.yaml's
# ClusterRole (the emulator makes one itself); the administrator's when unset.
DAEMON_KUBECONFIG_ENV = "SHIFTD_TEST_DAEMON_KUBECONFIG"
DAEMON_TOKEN = "shiftd-daemon-token"
DAEMON_USER = EmulatedUser(
    "system:serviceaccount:shiftd:shiftd",
    groups=("system:serviceaccounts", "system:serviceaccounts:shiftd", "system:authenticated"))
SHARED_DIR_ENV = "SHIFTD_SHARED_DIR"
_POLL_INTERVAL = 0.02
_CLEANUP_SECONDS = 10.0
_CRD_ESTABLISHED_SECONDS = 60.0

# Built-in kinds an example may contain: kind -> (group, plural).
_BUILTIN_KINDS: Mapping[str, tuple[str, str]] = {
    "Service": ("", "services"),
    "ConfigMap": ("", "configmaps"),
    "Secret": ("", "secrets"),
    "Deployment": ("apps", "deployments"),
    "ReplicaSet": ("apps", "replicasets"),
}
_SKIPPED_KINDS = frozenset({"Namespace"})  # the test namespace replaces the example's own


# --- shared inputs ---------------------------------------------------------------------------

@functools.cache
def default_crds() -> tuple[Obj, ...]:
    """The Argo Rollouts and Istio CRDs (Gateway included), parsed once per session."""
    return tuple(load_crd_documents(default_crd_files()))


@functools.cache
def flagger_crds() -> tuple[Obj, ...]:
    """The default CRDs and Flagger's (Canary, MetricTemplate, AlertProvider)."""
    return default_crds() + tuple(load_crd_documents(flagger_crd_files()))


def _repository_root() -> Path:
    return Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """``$SHIFTD_SHARED_DIR``, else the first ``shared`` folder holding ``examples`` found
    walking up from this file or the working directory."""
    configured = os.environ.get(SHARED_DIR_ENV)
    if configured:
        return Path(configured)
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for directory in (start, *start.parents):
            if (directory / "shared" / "examples").is_dir():
                return directory / "shared"
    raise FileNotFoundError(f"cannot find shared/examples; set {SHARED_DIR_ENV}")


def example_documents(folder: str) -> list[Obj]:
    """Every YAML document of ``shared/examples/<folder>``, files in name order."""
    directory = shared_dir() / "examples" / folder
    if not directory.is_dir():
        raise FileNotFoundError(f"no example folder {directory}")
    documents: list[Obj] = []
    for path in sorted(directory.glob("*.yaml")):
        documents.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return documents


def _has_analysis(rollout: Mapping[str, Any]) -> bool:
    canary = ((rollout.get("spec") or {}).get("strategy") or {}).get("canary") or {}
    return "analysis" in canary


def select_example_objects(documents: Sequence[Obj], *, exclude_analysis: bool) -> list[Obj]:
    """The objects to create from an example: one Rollout (the one without background
    analysis when ``exclude_analysis``, and then stripped of any), no Namespace."""
    rollouts = [d for d in documents if d.get("kind") == "Rollout"]
    chosen: Obj | None = None
    if rollouts:
        preferred = [r for r in rollouts if _has_analysis(r) != exclude_analysis]
        chosen = (preferred or rollouts)[0]
    selected: list[Obj] = []
    for document in documents:
        if document.get("kind") in _SKIPPED_KINDS:
            continue
        if document.get("kind") == "Rollout" and document is not chosen:
            continue
        obj = copy.deepcopy(document)
        if obj.get("kind") == "Rollout" and exclude_analysis:
            obj["spec"]["strategy"].get("canary", {}).pop("analysis", None)
        selected.append(obj)
    return selected


def _crd_kinds(crds: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, str, bool]]:
    """kind -> (group, plural, namespaced) for the given CRDs."""
    kinds: dict[str, tuple[str, str, bool]] = {}
    for crd in crds:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        kinds[names["kind"]] = (spec["group"], names["plural"],
                                spec.get("scope", "Namespaced") == "Namespaced")
    return kinds


# --- the cluster -----------------------------------------------------------------------------

class Cluster:
    """One test's namespace on an API server, with readers, waiters and operator actions.

    Create it with ``test_cluster``; ``api`` is the emulator, or ``None`` on a real server.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        client: KubeClient,
        namespace: str,
        kubeconfig_path: Path,
        daemon_kubeconfig_path: Path,
        api: ApiEmulator | None,
        crds: Sequence[Mapping[str, Any]],
        monitor: InvariantMonitor,
    ) -> None:
        self.client = client
        self.monitor = monitor
        self.namespace = namespace
        self.kubeconfig_path = kubeconfig_path  # the administrator's (tests, the kubelet)
        # shiftd's own identity, bound only to deploy/rbac.yaml's ClusterRole
        self.daemon_kubeconfig_path = daemon_kubeconfig_path
        self.api = api
        self._crd_kinds = _crd_kinds(crds)
        self._rollout_name: str | None = None
        self._virtual_service_name: str | None = None
        self.skipped: list[Obj] = []  # example objects whose kind is not installed

    # -- seeding ------------------------------------------------------------------------------

    def _kind_of(self, obj: Mapping[str, Any]) -> ResourceKind | None:
        group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
        kind = str(obj.get("kind"))
        if kind in _BUILTIN_KINDS:
            return ResourceKind(_BUILTIN_KINDS[kind][0], version, kind, _BUILTIN_KINDS[kind][1])
        if kind in self._crd_kinds:
            crd_group, plural, namespaced = self._crd_kinds[kind]
            if crd_group != group:
                return None
            return ResourceKind(group, version, kind, plural, namespaced=namespaced,
                                custom=True)
        return None

    async def apply_example(self, folder: str, *, exclude_analysis: bool = True) -> list[Obj]:
        """Create the objects of ``shared/examples/<folder>`` in this namespace; returns them
        as the server stored them. Kinds without an installed CRD are left out (``skipped``)."""
        documents = await anyio.to_thread.run_sync(example_documents, folder)
        created: list[Obj] = []
        for obj in select_example_objects(documents, exclude_analysis=exclude_analysis):
            kind = self._kind_of(obj)
            if kind is None:
                self.skipped.append(obj)
                continue
            obj.setdefault("metadata", {})["namespace"] = self.namespace
            stored = await self.client.create(kind, self.namespace, obj)
            created.append(stored)
            if obj["kind"] == "Rollout":
                self._rollout_name = stored["metadata"]["name"]
            elif obj["kind"] == "VirtualService":
                self._virtual_service_name = stored["metadata"]["name"]
        return created

    # -- reading ------------------------------------------------------------------------------

    def _name(self, name: str | None, default: str | None, what: str) -> str:
        if name is not None:
            return name
        if default is None:
            raise LookupError(f"no {what} applied from an example: pass its name")
        return default

    async def rollout(self, name: str | None = None) -> Obj:
        """The Rollout (default: the one ``apply_example`` created)."""
        return await self.client.get(ROLLOUT, self.namespace,
                                     self._name(name, self._rollout_name, "Rollout"))

    async def vs(self, name: str | None = None) -> Obj:
        """The VirtualService, read at v1beta1 (default: the example's)."""
        return await self.client.get(VIRTUAL_SERVICE, self.namespace, self._name(
            name, self._virtual_service_name, "VirtualService"))

    async def service(self, name: str) -> Obj:
        return await self.client.get(SERVICE, self.namespace, name)

    async def replica_sets(self) -> list[Obj]:
        """Every ReplicaSet in the namespace, by name."""
        items, _ = await self.client.list(REPLICA_SET, self.namespace)
        return sorted(items, key=lambda rs: str(rs["metadata"]["name"]))


    async def wait_for(
        self,
        predicate: Callable[[], Any],
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 (a polling deadline is this helper's job)
        what: str = "the condition",
    ) -> Any:
        """Poll ``predicate`` (sync or async) until it returns something truthy, and return
        that; ``AssertionError`` naming ``what`` and the last value after ``timeout`` s."""
        return await wait_for(predicate, timeout=timeout, what=what)

    # -- the fake kubelet ---------------------------------------------------------------------

    async def configuration(self) -> Configuration:
        """A kubernetes_asyncio configuration for this server (for raw clients)."""
        if self.api is not None:
            return self.api.configuration()
        configuration = Configuration()
        await k8s_config.load_kube_config(config_file=str(self.kubeconfig_path),
                                          client_configuration=configuration,
                                          persist_config=False)
        return configuration

    def kubelet(
        self, *, ready_after: float = 0.0, create_pods: bool = False
    ) -> AbstractAsyncContextManager[FakeKubelet]:
        """``async with cluster.kubelet() as kubelet:`` runs a ``FakeKubelet`` on this
        namespace for the block (its task group lives inside the test's task)."""
        return self._kubelet(ready_after=ready_after, create_pods=create_pods)

    @asynccontextmanager
    async def _kubelet(self, *, ready_after: float, create_pods: bool
                       ) -> AsyncIterator[FakeKubelet]:
        async with ApiClient(await self.configuration()) as api_client:
            kubelet = FakeKubelet(api_client, namespaces=[self.namespace],
                                  ready_after=ready_after, create_pods=create_pods)
            # A test's own failure comes through as itself, not wrapped by the task group.
            async with running(kubelet.run):
                yield kubelet

    def deployments(self, *, ready_after: float = 0.0
                    ) -> AbstractAsyncContextManager[FakeDeployments]:
        """``async with cluster.deployments() as fake:`` gives this namespace's Deployments a
        ready status (``FakeDeployments``) for the block."""
        return self._deployments(ready_after=ready_after)

    @asynccontextmanager
    async def _deployments(self, *, ready_after: float) -> AsyncIterator[FakeDeployments]:
        async with ApiClient(await self.configuration()) as api_client:
            fake = FakeDeployments(api_client, namespaces=[self.namespace],
                                   ready_after=ready_after)
            async with running(fake.run):
                yield fake

    # -- operator actions: exactly what shiftctl (and kubectl argo rollouts) sends --------------

    async def promote(self, name: str | None = None, *, full: bool = False) -> Obj:
        return await ctl.promote_rollout(self.client, namespace=self.namespace,
                                         name=self._name(name, self._rollout_name, "Rollout"),
                                         full=full)

    async def abort(self, name: str | None = None) -> Obj:
        return await ctl.abort_rollout(self.client, namespace=self.namespace,
                                       name=self._name(name, self._rollout_name, "Rollout"))

    async def retry(self, name: str | None = None) -> Obj:
        return await ctl.retry_rollout(self.client, namespace=self.namespace,
                                       name=self._name(name, self._rollout_name, "Rollout"))

    async def pause(self, name: str | None = None) -> Obj:
        return await ctl.pause_rollout(self.client, namespace=self.namespace,
                                       name=self._name(name, self._rollout_name, "Rollout"))

    async def resume(self, name: str | None = None) -> Obj:
        return await ctl.resume_rollout(self.client, namespace=self.namespace,
                                        name=self._name(name, self._rollout_name, "Rollout"))

    async def set_image(self, name: str | None, image: str, *, container: str = "*") -> Obj:
        """``set image NAME CONTAINER=IMAGE`` (every container by default)."""
        return await ctl.set_rollout_image(
            self.client, namespace=self.namespace,
            name=self._name(name, self._rollout_name, "Rollout"),
            container=container, image=image)

    async def patch_status(self, patch: Obj, name: str | None = None) -> Obj:
        """Merge ``{"status": ...}`` into the Rollout through ``/status`` (test setup)."""
        return await self.client.patch(
            ROLLOUT, self.namespace, self._name(name, self._rollout_name, "Rollout"),
            patch, patch_type="merge", subresource="status")




async def wait_for(
    predicate: Callable[[], Any],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 (a polling deadline is this helper's job)
    what: str = "the condition",
) -> Any:
    """Poll ``predicate`` until truthy under a deadline (see ``Cluster.wait_for``)."""
    last: Any = "<never evaluated>"
    try:
        with anyio.fail_after(timeout):
            while True:
                result = predicate()
                value = await result if inspect.isawaitable(result) else result
                last = value
                if value:
                    return value
                await anyio.sleep(_POLL_INTERVAL)
    except TimeoutError:
        raise AssertionError(
            f"timed out after {timeout}s waiting for {what}; last value: {last!r}") from None


# --- opening one -----------------------------------------------------------------------------

def _write_kubeconfig(api: ApiEmulator) -> Path:
    directory = Path(tempfile.mkdtemp(prefix="shiftd-test-"))
    return api.write_kubeconfig(directory / "kubeconfig")


async def _install_crds(client: KubeClient, crds: Sequence[Mapping[str, Any]]) -> None:
    """Server-side apply (the Argo CRDs are too large for client-side apply's annotation),
    then wait until every CRD is Established."""
    for crd in crds:
        await client.patch(CUSTOM_RESOURCE_DEFINITION, None, crd["metadata"]["name"],
                           dict(crd), patch_type="apply")

    async def established() -> bool:
        for crd in crds:
            stored = await client.get(CUSTOM_RESOURCE_DEFINITION, None, crd["metadata"]["name"])
            conditions = (stored.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Established" and c.get("status") == "True"
                       for c in conditions):
                return False
        return True

    await wait_for(established, timeout=_CRD_ESTABLISHED_SECONDS, what="the CRDs to be Established")


async def _create_namespace(client: KubeClient) -> str:
    name = f"shiftd-test-{secrets.token_hex(4)}"
    await client.create(NAMESPACE, None, {"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": name}})
    return name


async def _ensure_default_service_account(client: KubeClient, namespace: str) -> None:
    """Create the namespace's ``default`` ServiceAccount unless it exists: the ServiceAccount
    admission plugin refuses Pods without it, and a bare kube-apiserver (no
    controller-manager) never makes it; a full cluster's controller may make it first."""
    with suppress(Conflict):
        await client.create(SERVICE_ACCOUNT, namespace, {
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": namespace}})


def _monitored(client: KubeClient, namespace: str, crds: Sequence[Mapping[str, Any]], *,
               enabled: bool = True) -> AbstractAsyncContextManager[InvariantMonitor]:
    """The invariant monitor over the test's namespace (mesh kinds only when installed);
    disabled, it watches nothing."""
    installed = set(_crd_kinds(crds))
    kinds = [kind for kind in WATCHED if enabled and (not kind.custom or kind.kind in installed)]
    return InvariantMonitor.watching(client, namespace, kinds=kinds)


@asynccontextmanager
async def _real_cluster(kubeconfig: str, crds: Sequence[Mapping[str, Any]], *,
                        monitor: bool) -> AsyncIterator[Cluster]:
    client = await KubeClient.from_settings(kubeconfig=kubeconfig, context=None,
                                            in_cluster=False, qps=100.0, burst=200)
    async with client:
        await _install_crds(client, crds)
        namespace = await _create_namespace(client)
        try:
            await _ensure_default_service_account(client, namespace)
            async with _monitored(client, namespace, crds, enabled=monitor) as watcher:
                yield Cluster(client=client, namespace=namespace,
                              kubeconfig_path=Path(kubeconfig), api=None, crds=crds,
                              daemon_kubeconfig_path=Path(
                                  os.environ.get(DAEMON_KUBECONFIG_ENV) or kubeconfig),
                              monitor=watcher)
        finally:
            with anyio.move_on_after(_CLEANUP_SECONDS, shield=True):
                with suppress(NotFound):
                    await client.delete(NAMESPACE, None, namespace,
                                        propagation_policy="Background")


@asynccontextmanager
async def _emulated_cluster(crds: Sequence[Mapping[str, Any]], *,
                            monitor: bool) -> AsyncIterator[Cluster]:
    rbac = (_repository_root() / "deploy" / "rbac.yaml").read_text(encoding="utf-8")
    async with ApiEmulator(crds=crds, tls=True, rbac=rbac,
                           users={DAEMON_TOKEN: DAEMON_USER}) as api:
        kubeconfig = _write_kubeconfig(api)
        daemon_kubeconfig = api.write_kubeconfig(kubeconfig.parent / "daemon.kubeconfig",
                                                 token=DAEMON_TOKEN)
        try:
            async with KubeClient(api.configuration(), qps=1000.0, burst=1000) as client:
                namespace = await _create_namespace(client)
                async with _monitored(client, namespace, crds, enabled=monitor) as watcher:
                    yield Cluster(client=client, namespace=namespace,
                                  kubeconfig_path=kubeconfig, api=api, crds=crds,
                                  daemon_kubeconfig_path=daemon_kubeconfig, monitor=watcher)
        finally:
            shutil.rmtree(kubeconfig.parent, ignore_errors=True)


def test_cluster(
    *, crds: Sequence[Mapping[str, Any]] | None = None, monitor: bool = True
) -> AbstractAsyncContextManager[Cluster]:
    """``async with test_cluster() as cluster:`` — a fresh namespace on the real API server
    of ``$SHIFTD_TEST_KUBECONFIG``, else on an in-process emulator. ``crds`` defaults to
    ``default_crds()`` (Argo Rollouts and Istio, Gateway included).

    The invariant monitor (``tests.support.invariants``) watches the namespace for the whole
    block and fails the test on leaving it if shiftd's safety invariants were broken at any
    observed state. ``monitor=False`` only for a cluster opened in a pytest fixture (whose
    setup and teardown run in different tasks, so it cannot host the monitor's task group)
    by tests that run no daemon."""
    documents = default_crds() if crds is None else tuple(crds)
    kubeconfig = os.environ.get(KUBECONFIG_ENV)
    if kubeconfig:
        return _real_cluster(kubeconfig, documents, monitor=monitor)
    return _emulated_cluster(documents, monitor=monitor)


test_cluster.__test__ = False  # type: ignore[attr-defined]  # a helper, not a pytest test
