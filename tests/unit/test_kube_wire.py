"""What the client sends and reads unparsed: headers with the bearer token as
kubernetes_asyncio spells it (and refreshes it), encoded URLs, and an answer's version."""

from __future__ import annotations

import orjson
import pytest
from kubernetes_asyncio.client import Configuration
from yarl import URL

from shiftd.kube.wire import RequestHeaders, object_version, request_url

MERGE = "application/merge-patch+json"


def configuration(token: str | None = None, prefix: str | None = None) -> Configuration:
    config = Configuration(host="https://api.example")
    if token is not None:
        config.api_key["BearerToken"] = token
    if prefix is not None:
        config.api_key_prefix["BearerToken"] = prefix
    return config


async def test_headers_carry_the_defaults_the_content_type_and_the_prefixed_token() -> None:
    headers = RequestHeaders(configuration("s3cret", "Bearer"), {"User-Agent": "shiftd"})
    assert await headers.for_content_type(MERGE) == {
        "User-Agent": "shiftd", "Accept": "application/json", "Content-Type": MERGE,
        "authorization": "Bearer s3cret"}


async def test_headers_have_no_authorization_without_a_token() -> None:
    headers = RequestHeaders(configuration(), {})
    assert "authorization" not in await headers.for_content_type(MERGE)


async def test_a_token_replaced_in_the_configuration_is_sent_from_the_next_request() -> None:
    config = configuration("old")
    headers = RequestHeaders(config, {})
    assert (await headers.for_content_type(MERGE))["authorization"] == "old"
    config.api_key["BearerToken"] = "new"  # as kubeconfig's exec and gcp refresh tasks do
    assert (await headers.for_content_type(MERGE))["authorization"] == "new"
    assert (await headers.for_content_type("application/json"))["authorization"] == "new"


@pytest.mark.parametrize("asynchronous", [False, True], ids=["plain", "coroutine"])
async def test_the_refresh_hook_runs_before_every_request_and_its_token_is_sent(
    asynchronous: bool,
) -> None:
    config = configuration("t0", "Bearer")
    calls: list[int] = []

    def refresh(target: Configuration) -> None:
        calls.append(1)
        target.api_key["BearerToken"] = f"t{len(calls)}"

    async def refresh_async(target: Configuration) -> None:
        refresh(target)

    config.refresh_api_key_hook = refresh_async if asynchronous else refresh
    headers = RequestHeaders(config, {})
    sent = [(await headers.for_content_type(MERGE))["authorization"] for _ in range(3)]
    assert sent == ["Bearer t1", "Bearer t2", "Bearer t3"]


def test_a_plain_path_and_its_query_mean_what_the_url_aiohttp_built_meant() -> None:
    query = [("labelSelector", "app in (a,b),tier!=db"), ("fieldManager", "shiftd")]
    path = "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/web"
    url = request_url("https://api.example:6443", path, query)
    before = URL("https://api.example:6443" + path).with_query(query)
    assert (url.scheme, url.host, url.port, url.raw_path) == (
        before.scheme, before.host, before.port, before.raw_path)
    assert list(url.query.items()) == list(before.query.items()) == query


def test_a_path_that_needs_quoting_is_quoted_as_before() -> None:
    url = request_url("https://api.example", "/api/v1/namespaces/a b/pods/c%", [])
    assert url == URL("https://api.example/api/v1/namespaces/a b/pods/c%")
    assert url.raw_path == "/api/v1/namespaces/a%20b/pods/c%25"


def test_an_objects_version_is_read_without_parsing_it() -> None:
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
               "metadata": {"name": "web", "resourceVersion": "4711",
                            "managedFields": [{"fieldsV1": {"f:metadata": {
                                "f:resourceVersion": {}}}}],
                            "annotations": {"note": '"resourceVersion":"1"'}},
               "spec": {"replicas": 1}}
    assert object_version(orjson.dumps(rollout)) == "4711"
    assert object_version(orjson.dumps(rollout, option=orjson.OPT_INDENT_2)) is None


@pytest.mark.parametrize(
    ("document", "why"),
    [
        ({"metadata": {"name": "web"}}, "no version"),
        ({"metadata": {"resourceVersion": "5"},
          "status": {"ref": {"resourceVersion": "4"}}}, "a second one, in an object reference"),
        ({"metadata": {"resourceVersion": '5"x'}}, "an escape in the value"),
    ],
)
def test_an_uncertain_version_is_left_to_the_parser(document: object, why: str) -> None:
    assert object_version(orjson.dumps(document)) is None, why


def test_a_key_ending_in_an_escaped_quote_is_not_taken_for_the_version() -> None:
    document = orjson.dumps({'x"resourceVersion': "9", "metadata": {"name": "web"}})
    assert b'\\"resourceVersion":"9"' in document
    assert object_version(document) is None
