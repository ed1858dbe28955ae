"""What the emulator does like a real server beyond the recorded exchanges.

Field ownership for plain writes (the manager from the User-Agent, what an update takes from
another manager), following every page of a paged list, CRD schema defaults inside arrays,
required fields, patterns, lengths and item counts (with kube-apiserver v1.28's messages), a
continue token that outlived the history, and the selector parser's errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from shiftd.sim import ApiEmulator, default_crd_files, flagger_crd_files, load_crd_documents

pytestmark = pytest.mark.integration

Obj = dict[str, Any]
RS_PATH = "/apis/apps/v1/namespaces/default/replicasets"
ROLLOUTS = "/apis/argoproj.io/v1alpha1/namespaces/default/rollouts"
MERGE = "application/merge-patch+json"


@pytest.fixture(scope="module")
def crd_documents() -> list[Obj]:
    return load_crd_documents(default_crd_files())


@pytest.fixture
async def api(crd_documents: list[Obj]) -> AsyncIterator[ApiEmulator]:
    async with ApiEmulator(crds=[*crd_documents, *load_crd_documents(flagger_crd_files())]
                           ) as emulator:
        yield emulator


async def send(api: ApiEmulator, method: str, path: str, body: Any = None, *,
               agent: str = "tester/1.0", content_type: str = "application/json"
               ) -> tuple[int, Any]:
    headers = {"User-Agent": agent, "Content-Type": content_type}
    async with aiohttp.ClientSession() as session, session.request(
            method, api.url + path, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


def replica_set(name: str, **labels: str) -> Obj:
    labels = {"app": name, **labels}
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "x"}]}}}}


async def test_a_create_is_an_update_owned_by_the_user_agent_program(api: ApiEmulator) -> None:
    status, created = await send(api, "POST", RS_PATH, replica_set("web"),
                                 agent="kubectl/v1.24.0 (linux/amd64)")
    assert status == 201
    (entry,) = created["metadata"]["managedFields"]
    assert {k: v for k, v in entry.items() if k not in ("time", "fieldsV1")} == {
        "manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1"}
    fields = entry["fieldsV1"]
    assert fields["f:metadata"]["f:labels"] == {".": {}, "f:app": {}}
    containers = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert set(containers['k:{"name":"c"}']) >= {".", "f:image", "f:name", "f:imagePullPolicy"}
    assert "f:status" not in fields


async def test_an_update_takes_the_fields_it_changes_from_their_previous_manager(
    api: ApiEmulator
) -> None:
    await send(api, "POST", RS_PATH, replica_set("web"), agent="creator")
    status, patched = await send(api, "PATCH", f"{RS_PATH}/web?fieldManager=scaler",
                                 {"spec": {"replicas": 3}}, content_type=MERGE)
    assert status == 200
    by_manager = {e["manager"]: e["fieldsV1"] for e in patched["metadata"]["managedFields"]}
    assert by_manager["scaler"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in by_manager["creator"]["f:spec"]
    status, with_status = await send(api, "PATCH", f"{RS_PATH}/web/status",
                                     {"status": {"readyReplicas": 3}}, agent="kubelet",
                                     content_type=MERGE)
    assert status == 200
    (entry,) = [e for e in with_status["metadata"]["managedFields"] if e["manager"] == "kubelet"]
    assert entry["subresource"] == "status"
    assert entry["fieldsV1"] == {"f:status": {"f:readyReplicas": {}}}


async def test_a_paged_list_gives_every_object_once_with_the_first_pages_version(
    api: ApiEmulator
) -> None:
    for index in range(5):
        await send(api, "POST", RS_PATH, replica_set(f"rs-{index}"))
    names: list[str] = []
    versions = set()
    token = ""
    remaining = []
    while True:
        query = f"?limit=2&continue={token}" if token else "?limit=2"
        status, page = await send(api, "GET", RS_PATH + query)
        assert status == 200
        names += [item["metadata"]["name"] for item in page["items"]]
        versions.add(page["metadata"]["resourceVersion"])
        remaining.append(page["metadata"].get("remainingItemCount"))
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert names == [f"rs-{index}" for index in range(5)]
    assert len(versions) == 1
    assert remaining == [3, 1, None]


async def test_a_continue_token_older_than_the_history_is_expired(api: ApiEmulator) -> None:
    for index in range(3):
        await send(api, "POST", RS_PATH, replica_set(f"rs-{index}"))
    _, page = await send(api, "GET", RS_PATH + "?limit=1")
    await send(api, "POST", RS_PATH, replica_set("later"))
    api.compact()
    token = page["metadata"]["continue"]
    status, body = await send(api, "GET", f"{RS_PATH}?limit=1&continue={token}")
    assert (status, body["reason"], body["code"]) == (410, "Expired", 410)


async def test_crd_schema_defaults_are_filled_in_inside_arrays(api: ApiEmulator) -> None:
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
               "metadata": {"name": "web"},
               "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                   "metadata": {"labels": {"app": "web"}},
                   "spec": {"containers": [{"name": "c", "image": "x",
                                            "ports": [{"containerPort": 80}]}]}}}}
    status, created = await send(api, "POST", ROLLOUTS, rollout)
    assert status == 201
    container = created["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


async def test_a_missing_required_field_is_invalid_with_its_path(api: ApiEmulator) -> None:
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
               "metadata": {"name": "web"},
               "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                   "spec": {"containers": [{"image": "x"}]}}}}
    status, body = await send(api, "POST", ROLLOUTS, rollout)
    assert status == 422
    assert body["message"] == ('Rollout.argoproj.io "web" is invalid: '
                               "spec.template.spec.containers[0].name: Required value")
    assert body["details"]["causes"] == [{
        "reason": "FieldValueRequired", "message": "Required value",
        "field": "spec.template.spec.containers[0].name"}]


async def test_patterns_lengths_and_item_counts_are_checked_as_a_real_server_does(
    api: ApiEmulator
) -> None:
    """The causes kube-apiserver v1.28 gave for these very objects (its CEL stage's extra
    "some validation rules were not checked" cause aside: the emulator has no CEL)."""
    canary = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "c"},
              "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                       "service": {"port": 80, "mirror": [{"backendRef": {
                           "kind": "", "name": "a" * 254, "namespace": "BAD_NS",
                           "group": "Ok"}}]},
                       "analysis": {"interval": "soon", "threshold": 1, "iterations": 2}}}
    status, body = await send(api, "POST", "/apis/flagger.app/v1beta1/namespaces/default/canaries",
                              canary)
    assert status == 422
    ref = "spec.service.mirror[0].backendRef"
    assert sorted((c["field"], c["reason"], c["message"]) for c in body["details"]["causes"]) == [
        ("spec.analysis.interval", "FieldValueInvalid",
         "Invalid value: \"soon\": spec.analysis.interval in body should match '^[0-9]+(m|s)'"),
        (f"{ref}.group", "FieldValueInvalid",
         f"Invalid value: \"Ok\": {ref}.group in body should match "
         "'^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'"),
        # minLength only: the first failed check of a string (its pattern fails too)
        (f"{ref}.kind", "FieldValueInvalid",
         f"Invalid value: \"\": {ref}.kind in body should be at least 1 chars long"),
        (f"{ref}.name", "FieldValueTooLong", "Too long: may not be longer than 253"),
        (f"{ref}.namespace", "FieldValueInvalid",
         f"Invalid value: \"BAD_NS\": {ref}.namespace in body should match "
         "'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'"),
    ]
    gateway = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
               "metadata": {"name": "gw"}, "spec": {"servers": [
                   {"port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                    "hosts": ["*"], "tls": {"mode": "SIMPLE", "credentialNames": names}}
                   for names in ([], ["a", "b", "c"], ["a"])]}}
    status, body = await send(api, "POST",
                              "/apis/networking.istio.io/v1/namespaces/default/gateways", gateway)
    assert status == 422
    assert [(c["field"], c["reason"], c["message"]) for c in body["details"]["causes"]] == [
        ("spec.servers[0].tls.credentialNames", "FieldValueInvalid",
         "Invalid value: 0: spec.servers[0].tls.credentialNames in body should have at least 1 "
         "items"),
        ("spec.servers[1].tls.credentialNames", "FieldValueTooMany",
         "Too many: 3: must have at most 2 items"),
    ]
    canary["spec"]["analysis"]["interval"] = "1m"
    canary["spec"]["service"]["mirror"] = [{"backendRef": {"name": "b", "namespace": "ns",
                                                          "port": 80}}]
    status, created = await send(api, "POST",
                                 "/apis/flagger.app/v1beta1/namespaces/default/canaries", canary)
    assert status == 201, created
    # as the real server answered: the schema's defaults filled in
    assert created["spec"]["service"]["mirror"] == [{"backendRef": {
        "group": "", "kind": "Service", "name": "b", "namespace": "ns", "port": 80}}]


@pytest.mark.parametrize(("selector", "message"), [
    ("tier in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("tier in a", "unable to parse requirement: found 'a' expected: '('"),
    ("a b", "unable to parse requirement: found 'b', expected: '=', '!=', '==', 'in', notin'"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("a,", "found '', expected: identifier after ','"),
])
async def test_a_bad_label_selector_gets_the_parsers_message(
    api: ApiEmulator, selector: str, message: str
) -> None:
    async with aiohttp.ClientSession() as session, session.get(
            api.url + RS_PATH, params={"labelSelector": selector}) as response:
        body = await response.json()
    assert (response.status, body["message"]) == (400, message)


@pytest.mark.parametrize(("selector", "selected"), [
    ("tier in (a,c)", ["a", "c"]),
    ("tier notin (a)", ["b", "c", "none"]),
    ("!tier", ["none"]),
    ("tier,tier!=b", ["a", "c"]),
    ("rank>1", ["b", "c"]),
    ("rank<2", ["a"]),
    ("tier in (a,)", ["a"]),
])
async def test_set_based_and_numeric_selectors_select_as_the_real_ones(
    api: ApiEmulator, selector: str, selected: list[str]
) -> None:
    for name, labels in (("a", {"tier": "a", "rank": "1"}), ("b", {"tier": "b", "rank": "2"}),
                         ("c", {"tier": "c", "rank": "3"}), ("none", {})):
        await send(api, "POST", RS_PATH, replica_set(name, **labels))
    async with aiohttp.ClientSession() as session, session.get(
            api.url + RS_PATH, params={"labelSelector": selector}) as response:
        body = await response.json()
    assert [item["metadata"]["name"] for item in body["items"]] == selected


async def test_the_part_an_endpoint_ignores_is_not_validated_either(api: ApiEmulator) -> None:
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
               "metadata": {"name": "web"},
               "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                   "metadata": {"labels": {"app": "web"}},
                   "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    assert (await send(api, "POST", ROLLOUTS, rollout))[0] == 201
    status, main = await send(api, "PATCH", f"{ROLLOUTS}/web",
                              {"status": {"currentStepIndex": "not a number"}},
                              content_type=MERGE)
    assert (status, main.get("status")) == (200, None)
    status, on_status = await send(api, "PATCH", f"{ROLLOUTS}/web/status",
                                   {"spec": {"replicas": "three"}, "status": {"phase": "Healthy"}},
                                   content_type=MERGE)
    assert status == 200
    assert "replicas" not in on_status["spec"]
    assert on_status["status"] == {"phase": "Healthy"}
