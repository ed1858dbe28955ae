"""The emulator over HTTPS, and its bearer-token users authorized by RBAC as a real server does.

The TLS tests connect with the kubeconfig the emulator writes (its CA inside), so a client that
verifies certificates accepts it and one that trusts nothing else refuses it. The RBAC tests
give the emulator the project's own ``deploy/rbac.yaml`` and smaller roles, and check each
decision and the 403 body word for word. The last test reproduces a leak of finding 4: over
HTTPS, a ``KubeClient`` closed with watches still streaming left their sockets open.
"""

from __future__ import annotations

import asyncio
import gc
import ssl
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client import ApiClient, ApiException

from shiftd.kube.client import KubeClient
from shiftd.kube.errors import CannotConnect
from shiftd.kube.resources import SERVICE
from shiftd.kube.retrying import RetryPolicy
from shiftd.sim import ApiEmulator, EmulatedUser, default_crd_files, load_crd_documents

pytestmark = pytest.mark.integration

Obj = dict[str, Any]
SHIFTD_TOKEN = "token-of-the-shiftd-service-account"
READER_TOKEN = "token-of-a-reader"
EDITOR_TOKEN = "token-of-an-editor"
DEPLOY_RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml"

ROLES = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: one-service, namespace: team-a}
rules:
  - apiGroups: [""]
    resources: [services]
    resourceNames: [web]
    verbs: [get, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: one-service, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: one-service}
subjects: [{kind: User, name: editor}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: service-reader}
rules:
  - apiGroups: [""]
    resources: [services]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: readers, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: service-reader}
subjects: [{kind: Group, name: readers}]
"""

USERS = {
    SHIFTD_TOKEN: EmulatedUser("system:serviceaccount:shiftd:shiftd"),
    READER_TOKEN: EmulatedUser("reader", groups=("readers",)),
    EDITOR_TOKEN: EmulatedUser("editor"),
}


@pytest.fixture(scope="module")
def crd_documents() -> list[Obj]:
    return load_crd_documents(default_crd_files())


@pytest.fixture
async def api(crd_documents: list[Obj]) -> AsyncIterator[ApiEmulator]:
    rbac = DEPLOY_RBAC.read_text(encoding="utf-8") + "\n---\n" + ROLES
    async with ApiEmulator(crds=crd_documents, tls=True, users=USERS, rbac=rbac,
                           namespaces=("default", "team-a", "team-b")) as emulator:
        yield emulator


async def send(api: ApiEmulator, method: str, path: str, *, token: str | None,
               body: Obj | None = None, content_type: str = "application/json"
               ) -> tuple[int, Any]:
    context = ssl.create_default_context(cadata=(api.ca_pem or b"").decode())
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as session, session.request(
            method, api.url + path, json=body, headers=headers, ssl=context) as response:
        return response.status, await response.json(content_type=None)


def service(name: str) -> Obj:
    return {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}


# --- TLS -------------------------------------------------------------------------------------


async def test_a_client_loading_the_written_kubeconfig_verifies_the_server_certificate(
    api: ApiEmulator, tmp_path: Path
) -> None:
    assert api.url.startswith("https://")
    path = api.write_kubeconfig(tmp_path / "kubeconfig")
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(path), client_configuration=configuration,
                                  persist_config=False)
    assert configuration.verify_ssl
    async with ApiClient(configuration) as api_client:
        namespaces = await client.CoreV1Api(api_client).list_namespace()
    assert "team-a" in {item.metadata.name for item in namespaces.items}


async def test_a_client_that_does_not_trust_the_emulator_ca_is_refused(
    api: ApiEmulator
) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(api.url + "/version", ssl=ssl.create_default_context())


async def test_the_kube_client_talks_to_the_emulator_over_https(api: ApiEmulator) -> None:
    async with KubeClient(api.configuration()) as kube:
        created = await kube.create(SERVICE, "default", service("web"))
        items, _ = await kube.list(SERVICE, "default")
    assert created["spec"]["clusterIP"]
    assert [item["metadata"]["name"] for item in items] == ["web"]


async def test_the_kube_client_refuses_a_server_its_ca_does_not_vouch_for(
    api: ApiEmulator
) -> None:
    """Its own connections verify the server as kubernetes_asyncio's connector did: against
    the configured CA (here none, so the system's, which never signed the emulator's)."""
    configuration = api.configuration()
    configuration.ssl_ca_cert = None
    async with KubeClient(configuration, retry_policy=RetryPolicy(attempts=1)) as kube:
        with pytest.raises(CannotConnect, match="CERTIFICATE_VERIFY_FAILED"):
            await kube.get(SERVICE, "default", "web")


async def test_with_verify_ssl_off_the_kube_client_accepts_any_certificate(
    api: ApiEmulator
) -> None:
    configuration = api.configuration()
    configuration.ssl_ca_cert = None
    configuration.verify_ssl = False
    async with KubeClient(configuration) as kube:
        await kube.create(SERVICE, "default", service("web"))
        assert (await kube.get(SERVICE, "default", "web"))["metadata"]["name"] == "web"


@contextmanager
def emulator_in_another_thread() -> Iterator[ApiEmulator]:
    """An HTTPS emulator on its own event loop, so a client's loop can end on its own."""
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        holder["stop"] = asyncio.Event()
        holder["loop"] = asyncio.get_running_loop()
        async with ApiEmulator(tls=True, bookmark_interval=0.05) as emulator:
            holder["api"] = emulator
            started.set()
            await holder["stop"].wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.start()
    try:
        assert started.wait(10), "the emulator did not start"
        yield holder["api"]
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)


async def close_with_watches_open(api: ApiEmulator) -> None:
    kube = KubeClient(api.configuration())
    _, version = await kube.list(SERVICE, "default")
    watching = anyio.Event()

    async def watch() -> None:
        async with aclosing(kube.watch(SERVICE, "default", resource_version=version)) as events:
            async for _ in events:
                watching.set()  # a bookmark came: the stream is open

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(watch)
        await watching.wait()
        group.cancel_scope.cancel()
    await kube.close()


def test_closing_the_kube_client_over_https_with_watches_streaming_leaves_no_socket_open(
) -> None:
    with emulator_in_another_thread() as api, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(close_with_watches_open(api))  # the loop ends right after close()
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


# --- authentication --------------------------------------------------------------------------


async def test_a_request_without_a_known_token_is_unauthorized(api: ApiEmulator) -> None:
    for token in (None, "forged"):
        status, body = await send(api, "GET", "/api/v1/namespaces/default/services",
                                  token=token)
        assert (status, body) == (401, {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Unauthorized", "reason": "Unauthorized", "code": 401})


async def test_the_administrator_token_is_not_restricted_by_rbac(api: ApiEmulator) -> None:
    status, _ = await send(api, "GET", "/api/v1/namespaces/team-b/pods", token=api.token)
    assert status == 200


# --- the project's own RBAC ------------------------------------------------------------------


async def test_the_shiftd_service_account_may_do_what_deploy_rbac_grants(
    api: ApiEmulator
) -> None:
    async with KubeClient(api.configuration()) as admin:
        await admin.create(SERVICE, "team-b", service("web"))
    allowed = [
        ("GET", "/apis/argoproj.io/v1alpha1/rollouts", None),
        ("GET", "/apis/argoproj.io/v1alpha1/namespaces/team-b/rollouts", None),
        ("GET", "/apis/apps/v1/namespaces/team-b/replicasets", None),
        ("PATCH", "/api/v1/namespaces/team-b/services/web", {"metadata": {"labels": {"a": "b"}}}),
    ]
    for method, path, body in allowed:
        status, answer = await send(api, method, path, token=SHIFTD_TOKEN, body=body,
                                    content_type="application/merge-patch+json")
        assert status == 200, (method, path, answer)


async def test_shiftd_may_patch_a_rollout_and_its_status_but_not_delete_it(
    api: ApiEmulator
) -> None:
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
               "metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "w"}}}}
    status, _ = await send(api, "POST", "/apis/argoproj.io/v1alpha1/namespaces/team-b/rollouts",
                           token=api.token, body=rollout)
    assert status == 201
    path = "/apis/argoproj.io/v1alpha1/namespaces/team-b/rollouts/web"
    merge = "application/merge-patch+json"
    status, _ = await send(api, "PATCH", f"{path}/status", token=SHIFTD_TOKEN,
                           body={"status": {"phase": "Healthy"}}, content_type=merge)
    assert status == 200
    # the workload-generation annotation of a Rollout with a workloadRef
    status, _ = await send(api, "PATCH", path, token=SHIFTD_TOKEN, body={"metadata": {
        "annotations": {"rollout.argoproj.io/workload-generation": "1"}}}, content_type=merge)
    assert status == 200
    status, body = await send(api, "DELETE", path, token=SHIFTD_TOKEN)
    assert (status, body) == (403, {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'rollouts.argoproj.io "web" is forbidden: User '
                   '"system:serviceaccount:shiftd:shiftd" cannot delete resource "rollouts" '
                   'in API group "argoproj.io" in the namespace "team-b"',
        "reason": "Forbidden",
        "details": {"name": "web", "group": "argoproj.io", "kind": "rollouts"},
        "code": 403,
    })


async def test_shiftd_may_get_a_secret_but_not_list_secrets_at_the_cluster_scope(
    api: ApiEmulator
) -> None:
    status, body = await send(api, "GET", "/api/v1/secrets", token=SHIFTD_TOKEN)
    assert status == 403
    assert body["message"] == ('secrets is forbidden: User "system:serviceaccount:shiftd:shiftd"'
                               ' cannot list resource "secrets" in API group "" at the cluster '
                               "scope")
    assert body["details"] == {"kind": "secrets"}
    status, _ = await send(api, "GET", "/api/v1/namespaces/default/secrets/missing",
                           token=SHIFTD_TOKEN)
    assert status == 404  # allowed, and then not found


# --- roles, bindings, names and namespaces ----------------------------------------------------


async def test_a_role_binding_grants_only_in_its_namespace_and_a_group_binds_its_members(
    api: ApiEmulator
) -> None:
    status, _ = await send(api, "GET", "/api/v1/namespaces/team-a/services", token=READER_TOKEN)
    assert status == 200
    status, body = await send(api, "GET", "/api/v1/namespaces/team-b/services",
                              token=READER_TOKEN)
    assert status == 403
    assert body["message"].endswith('cannot list resource "services" in API group "" in the '
                                    'namespace "team-b"')


async def test_resource_names_limit_a_rule_to_the_named_objects(api: ApiEmulator) -> None:
    async with KubeClient(api.configuration()) as admin:
        for name in ("web", "db"):
            await admin.create(SERVICE, "team-a", service(name))
    base = "/api/v1/namespaces/team-a/services"
    assert (await send(api, "GET", f"{base}/web", token=EDITOR_TOKEN))[0] == 200
    assert (await send(api, "GET", f"{base}/db", token=EDITOR_TOKEN))[0] == 403
    assert (await send(api, "GET", base, token=EDITOR_TOKEN))[0] == 403  # a list has no name
    status, _ = await send(api, "DELETE", f"{base}/web", token=EDITOR_TOKEN)
    assert status == 403


async def test_a_kubeconfig_for_a_user_carries_its_token(api: ApiEmulator,
                                                         tmp_path: Path) -> None:
    path = api.write_kubeconfig(tmp_path / "reader", token=READER_TOKEN)
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(path), client_configuration=configuration,
                                  persist_config=False)
    async with ApiClient(configuration) as api_client:
        core = client.CoreV1Api(api_client)
        await core.list_namespaced_service("team-a")
        with pytest.raises(ApiException) as denied:
            await core.list_namespaced_service("default")
    assert denied.value.status == 403
