"""A mesh in another cluster: each kind's calls go to the API server holding it, owner
references never cross clusters, and /readyz names the API server that does not answer."""

from __future__ import annotations

import functools
from typing import Any, cast

import anyio
import pytest

from shiftd.kube.client import KubeClient
from shiftd.kube.errors import CannotConnect
from shiftd.kube.resources import DESTINATION_RULE, ROLLOUT, SERVICE, VIRTUAL_SERVICE
from shiftd.kube.servers import ApiServer, ApiServers
from shiftd.runtime.telemetry import Telemetry
from tests.integration.harness import wait_for
from tests.unit.test_telemetry import get, sample, serving


class RecordingClient:
    """Stands in for one API server's ``KubeClient``: records the calls it is sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.patches: list[Any] = []

    async def list(self, kind: Any, namespace: Any = None, **_: Any) -> tuple[list[Any], str]:
        self.calls.append(("list", kind.plural, namespace))
        return [], "1"

    async def serves(self, kind: Any) -> bool:
        self.calls.append(("serves", kind.plural, None))
        return True

    async def patch(self, kind: Any, namespace: Any, name: str, patch: Any, **_: Any) -> Any:
        self.calls.append(("patch", kind.plural, name))
        self.patches.append(patch)
        return {}

    async def create(self, kind: Any, namespace: Any, body: Any) -> Any:
        self.calls.append(("create", kind.plural, body))
        return body


def two_clusters() -> tuple[ApiServers, RecordingClient, RecordingClient]:
    main, mesh = RecordingClient(), RecordingClient()
    servers = ApiServers(ApiServer("main", cast(KubeClient, main)),
                         [(ApiServer("mesh", cast(KubeClient, mesh)),
                           (VIRTUAL_SERVICE, DESTINATION_RULE))])
    return servers, main, mesh


async def test_istio_kinds_go_to_the_mesh_server_and_the_rest_to_the_main_one() -> None:
    servers, main, mesh = two_clusters()
    await servers.list(ROLLOUT, "shop")
    await servers.list(VIRTUAL_SERVICE, "shop")
    await servers.serves(DESTINATION_RULE)
    await servers.patch(VIRTUAL_SERVICE, "shop", "web", [], patch_type="json")
    await servers.patch(SERVICE, "shop", "web-canary", {}, patch_type="merge")
    assert main.calls == [("list", "rollouts", "shop"), ("patch", "services", "web-canary")]
    assert mesh.calls == [("list", "virtualservices", "shop"),
                          ("serves", "destinationrules", None),
                          ("patch", "virtualservices", "web")]


OWNED = {"metadata": {"name": "web", "ownerReferences": [{"kind": "Canary", "uid": "u1"}]}}


async def test_an_object_created_on_the_mesh_server_carries_no_owner_reference() -> None:
    servers, main, mesh = two_clusters()
    await servers.create(VIRTUAL_SERVICE, "shop", OWNED)
    await servers.create(SERVICE, "shop", OWNED)
    await servers.patch(VIRTUAL_SERVICE, "shop", "web", OWNED, patch_type="apply")
    assert mesh.calls == [("create", "virtualservices", {"metadata": {"name": "web"}}),
                          ("patch", "virtualservices", "web")]
    assert mesh.patches == [{"metadata": {"name": "web"}}]
    assert main.calls == [("create", "services", OWNED)]
    assert OWNED["metadata"]["ownerReferences"]  # the caller's body is left as it was


@pytest.mark.parametrize(("down", "message"), [
    (["mesh"], "not ready: the mesh API server is unreachable"),
    (["main"], "not ready: the main API server is unreachable"),
    (["main", "mesh"], "not ready: the main and mesh API servers are unreachable"),
])
async def test_readyz_names_the_api_server_that_gave_no_answer(down: list[str],
                                                               message: str) -> None:
    telemetry = Telemetry()
    hooks = {name: telemetry.request_hook(name) for name in ("main", "mesh")}
    telemetry.set_ready(True)
    async with serving(telemetry) as url:
        for name in down:
            hooks[name]("watch", 0)
        assert (await get(url("/readyz")))[0::2] == (503, message + "\n")
        for name in down:
            hooks[name]("list", 200)
        assert (await get(url("/readyz")))[0::2] == (200, "ready: standby\n")


def test_each_api_server_reports_whether_it_answers_as_a_metric() -> None:
    telemetry = Telemetry()
    mesh = telemetry.request_hook("mesh")
    telemetry.request_hook("main")("get", 404)  # an answer, even an error, is an answer
    mesh("patch", 0)
    assert sample(telemetry, "shiftd_api_server_up", server="main") == 1
    assert sample(telemetry, "shiftd_api_server_up", server="mesh") == 0
    assert sample(telemetry, "controller_clientset_k8s_request_total", verb="patch",
                  status_code="0") == 1
    assert telemetry.unreachable == ["mesh"]


async def test_a_write_to_a_mesh_server_known_not_to_answer_fails_at_once() -> None:
    main, mesh = RecordingClient(), RecordingClient()
    down: set[str] = {"mesh"}
    servers = ApiServers(ApiServer("main", cast(KubeClient, main)),
                         [(ApiServer("mesh", cast(KubeClient, mesh)), (VIRTUAL_SERVICE,))],
                         answering=lambda name: name not in down)
    with pytest.raises(CannotConnect, match="the mesh API server is unreachable"):
        await servers.patch(VIRTUAL_SERVICE, "shop", "web", [], patch_type="json")
    await servers.list(VIRTUAL_SERVICE, "shop")  # reads still go: they probe the server
    down.add("main")
    await servers.patch(SERVICE, "shop", "web", {}, patch_type="merge")  # the main: always
    down.clear()
    await servers.patch(VIRTUAL_SERVICE, "shop", "web", [], patch_type="json")
    assert mesh.calls == [("list", "virtualservices", "shop"), ("patch", "virtualservices", "web")]
    assert main.calls == [("patch", "services", "web")]


async def test_a_server_not_answering_is_probed_until_it_answers_and_no_other_is() -> None:
    main, mesh = RecordingClient(), RecordingClient()
    down: set[str] = {"mesh"}
    asked: list[str] = []

    def answering(name: str) -> bool:
        asked.append(name)
        return name not in down

    servers = ApiServers(ApiServer("main", cast(KubeClient, main)),
                         [(ApiServer("mesh", cast(KubeClient, mesh)),
                           (VIRTUAL_SERVICE, DESTINATION_RULE))], answering=answering)

    async with anyio.create_task_group() as group:
        group.start_soon(functools.partial(servers.probe, main_kind=ROLLOUT, interval=0.001))
        await wait_for(lambda: len(mesh.calls) >= 2, what="two probes of the mesh server")
        down.clear()  # as the client's request hook does when an answer comes
        probes, rounds = len(mesh.calls), asked.count("mesh")
        await wait_for(lambda: asked.count("mesh") >= rounds + 3, what="three more rounds")
        group.cancel_scope.cancel()
    assert set(mesh.calls) == {("serves", "virtualservices", None)}
    assert main.calls == []  # the main server answered all along
    assert len(mesh.calls) == probes  # no probe once it answers
