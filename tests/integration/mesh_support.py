"""The second cluster of a mesh-in-another-cluster test: the API server holding Istio's objects.

Alibaba ASM (and Flagger's ``-kubeconfig-service-mesh``) keep VirtualServices, DestinationRules
and Gateways on a control-plane cluster of their own; the workloads, Services and Rollouts stay
on the main one. ``async with mesh_cluster(cluster) as mesh:`` opens that second cluster for a
test whose main cluster is ``cluster``, with a namespace of the same name (as ASM mirrors the
data plane's namespaces):

- the real API server of ``$SHIFTD_TEST_MESH_KUBECONFIG`` when that is set (Istio's CRDs
  installed with server-side apply, the namespace deleted at the end; the daemon uses
  ``$SHIFTD_TEST_MESH_DAEMON_KUBECONFIG``, an identity bound only to deploy/mesh/rbac.yaml, or
  the administrator's when unset), or
- an ``ApiEmulator`` with Istio's CRDs only, TLS and deploy/mesh/rbac.yaml's RBAC.

A test run against a real main cluster without a real mesh cluster is skipped
(``needs_mesh_cluster``): an emulated mesh beside a real main cluster would test neither.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from shiftd.kube.client import KubeClient
from shiftd.kube.errors import NotFound
from shiftd.kube.resources import NAMESPACE, VIRTUAL_SERVICE, ResourceKind
from shiftd.sim import ApiEmulator
from tests.integration.harness import (
    _CLEANUP_SECONDS,
    DAEMON_TOKEN,
    DAEMON_USER,
    KUBECONFIG_ENV,
    Cluster,
    _crd_kinds,
    _install_crds,
    default_crds,
    example_documents,
)

Obj = dict[str, Any]

MESH_KUBECONFIG_ENV = "SHIFTD_TEST_MESH_KUBECONFIG"
MESH_DAEMON_KUBECONFIG_ENV = "SHIFTD_TEST_MESH_DAEMON_KUBECONFIG"
ISTIO_GROUP = "networking.istio.io"
MESH_RBAC = Path(__file__).resolve().parents[2] / "deploy" / "mesh" / "rbac.yaml"

needs_mesh_cluster = pytest.mark.skipif(
    bool(os.environ.get(KUBECONFIG_ENV)) and not os.environ.get(MESH_KUBECONFIG_ENV),
    reason=f"{KUBECONFIG_ENV} is set but {MESH_KUBECONFIG_ENV} is not: a mesh-in-another-"
           f"cluster test needs a second real cluster for Istio's objects")


def istio_crds() -> tuple[Obj, ...]:
    """Istio's CRDs (VirtualService, DestinationRule, Gateway) of the default set."""
    return tuple(crd for crd in default_crds() if crd["spec"]["group"] == ISTIO_GROUP)


def main_cluster_crds() -> tuple[Obj, ...]:
    """Every default CRD but Istio's: the main cluster of a mesh held elsewhere."""
    return tuple(crd for crd in default_crds() if crd["spec"]["group"] != ISTIO_GROUP)


@dataclass
class MeshCluster:
    """The mesh cluster's namespace; ``api`` is the emulator, or ``None`` on a real server."""

    __test__ = False

    client: KubeClient
    namespace: str
    kubeconfig_path: Path
    daemon_kubeconfig_path: Path  # shiftd's identity there, bound to deploy/mesh/rbac.yaml
    api: ApiEmulator | None
    crds: Sequence[Mapping[str, Any]]

    async def apply_istio(self, folder: str) -> list[Obj]:
        """Create the Istio objects of ``shared/examples/<folder>`` in this namespace."""
        kinds = _crd_kinds(self.crds)
        created = []
        for obj in example_documents(folder):
            group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
            if group != ISTIO_GROUP:
                continue
            _, plural, _ = kinds[obj["kind"]]
            kind = ResourceKind(group, version, obj["kind"], plural, custom=True)
            obj["metadata"]["namespace"] = self.namespace
            created.append(await self.client.create(kind, self.namespace, obj))
        return created

    async def vs(self, name: str) -> Obj:
        return await self.client.get(VIRTUAL_SERVICE, self.namespace, name)


def mesh_cluster(main: Cluster) -> AbstractAsyncContextManager[MeshCluster]:
    """The mesh cluster beside ``main`` (see the module's docstring)."""
    kubeconfig = os.environ.get(MESH_KUBECONFIG_ENV)
    if kubeconfig:
        return _real_mesh(kubeconfig, main.namespace)
    if main.api is None:
        raise RuntimeError("mark the test with needs_mesh_cluster: the main cluster is real "
                           f"and {MESH_KUBECONFIG_ENV} is not set")
    return _emulated_mesh(main.namespace)


async def _create_namespace(client: KubeClient, name: str) -> None:
    await client.create(NAMESPACE, None, {"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": name}})


@asynccontextmanager
async def _real_mesh(kubeconfig: str, namespace: str) -> AsyncIterator[MeshCluster]:
    client = await KubeClient.from_settings(kubeconfig=kubeconfig, context=None,
                                            in_cluster=False, qps=100.0, burst=200)
    async with client:
        await _install_crds(client, istio_crds())
        await _create_namespace(client, namespace)
        try:
            yield MeshCluster(client=client, namespace=namespace,
                              kubeconfig_path=Path(kubeconfig), api=None, crds=istio_crds(),
                              daemon_kubeconfig_path=Path(
                                  os.environ.get(MESH_DAEMON_KUBECONFIG_ENV) or kubeconfig))
        finally:
            with anyio.move_on_after(_CLEANUP_SECONDS, shield=True):
                with suppress(NotFound):
                    await client.delete(NAMESPACE, None, namespace,
                                        propagation_policy="Background")


@asynccontextmanager
async def _emulated_mesh(namespace: str) -> AsyncIterator[MeshCluster]:
    rbac = MESH_RBAC.read_text(encoding="utf-8")
    async with ApiEmulator(crds=istio_crds(), tls=True, rbac=rbac,
                           users={DAEMON_TOKEN: DAEMON_USER}) as api:
        directory = Path(tempfile.mkdtemp(prefix="shiftd-mesh-"))
        try:
            kubeconfig = api.write_kubeconfig(directory / "kubeconfig")
            daemon_kubeconfig = api.write_kubeconfig(directory / "daemon.kubeconfig",
                                                     token=DAEMON_TOKEN)
            async with KubeClient(api.configuration(), qps=1000.0, burst=1000) as client:
                await _create_namespace(client, namespace)
                yield MeshCluster(client=client, namespace=namespace,
                                  kubeconfig_path=kubeconfig, api=api, crds=istio_crds(),
                                  daemon_kubeconfig_path=daemon_kubeconfig)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
