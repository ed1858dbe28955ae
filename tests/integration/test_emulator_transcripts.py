"""The emulator answers every recorded exchange exactly as a real kube-apiserver v1.24 did.

``shared/apiserver-transcripts`` holds 64 request/response pairs recorded from a real API server
(see its README). They are replayed once, in the README's order, against one fresh emulator
(RBAC on, all CRDs installed) in one fresh namespace; each exchange is then its own test, which
compares the normalised response: the status code and the body with the recording's
placeholders (``<ns>``, ``<uid>``, ``<rv>``, ``<time>``, ``<clusterIP>``, ``<continue>``)
substituted, ``managedFields`` dropped except in the server-side-apply exchanges. Watch
exchanges compare their event types (what arrives depends on timing), and ERROR events whole.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from shiftd.sim import ApiEmulator, EmulatedUser, load_crd_documents

from .harness import shared_dir

pytestmark = pytest.mark.integration

Obj = dict[str, Any]

TRANSCRIPT_FILES = ("defaults", "custom-resources", "patches", "reads", "watch")
NAMESPACE = "transcript-replay"
ADMIN_TOKEN = "replay-admin-token"
USER_TOKEN = "replay-shiftd-user-token"
# The exchanges the recording made as this user (every other one as an administrator).
AS_USER = frozenset({"forbidden-403"})
# Exchanges where the emulator deliberately answers otherwise, each with its reason.
KNOWN_DIFFERENCES: Mapping[str, str] = {}

# The role the recording's "shiftd-user" had: it may read ReplicaSets, not pods.
USER_RBAC = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: replicaset-reader}
rules:
  - apiGroups: [apps]
    resources: [replicasets]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: replicaset-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: replicaset-reader}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: shiftd-user}
"""

_STALE_RV = "1"
_REQUEST_TIME = "2024-01-01T00:00:00.000000Z"
_TIME_KEYS = frozenset({
    "creationTimestamp", "time", "lastTransitionTime", "firstTimestamp", "lastTimestamp",
    "acquireTime", "renewTime", "deletionTimestamp",
})
_PARENTHESISED_NUMBER = re.compile(r"\((\d+)\)")


@dataclass(frozen=True, slots=True)
class Exchange:
    file: str
    name: str
    request: Obj
    response: Obj

    @property
    def test_id(self) -> str:
        return f"{self.file}/{self.name}"


def transcript_dir() -> Path:
    return shared_dir() / "apiserver-transcripts"


def load_exchanges() -> list[Exchange]:
    exchanges: list[Exchange] = []
    for file in TRANSCRIPT_FILES:
        recorded = json.loads((transcript_dir() / f"{file}.json").read_text(encoding="utf-8"))
        exchanges.extend(
            Exchange(file, item["name"], item["request"], item["response"]) for item in recorded
        )
    return exchanges


def all_crds() -> list[Obj]:
    return load_crd_documents(sorted((shared_dir() / "crds").glob("*/*.yaml")))


# --- the request as sent -----------------------------------------------------------------

def request_body(value: Any) -> Any:
    """A recorded request body made sendable: ``<ns>`` is the namespace, ``<rv>`` a stale
    resourceVersion, ``<time>`` a valid timestamp, and a placeholder uid is left out."""
    if isinstance(value, dict):
        return {key: request_body(item) for key, item in value.items()
                if not (key == "uid" and item == "<uid>")}
    if isinstance(value, list):
        return [request_body(item) for item in value]
    if value == "<rv>":
        return _STALE_RV
    if value == "<time>":
        return _REQUEST_TIME
    if isinstance(value, str):
        return value.replace("<ns>", NAMESPACE)
    return value


def request_path(exchange: Exchange, list_version: str) -> str:
    """``<rv>`` in a watch path is the resourceVersion of the list before it; the too-old
    watch was recorded from version 1 (its message says so), after a compaction."""
    version = _STALE_RV if exchange.name == "watch-too-old-rv-410" else list_version
    return exchange.request["path"].replace("<ns>", NAMESPACE).replace("<rv>", version)


# --- the response as compared ------------------------------------------------------------

def normalised(value: Any, *, keep_managed_fields: bool, key: str | None = None) -> Any:
    """An emulator response in the recording's terms: run-specific values as placeholders."""
    if isinstance(value, dict):
        return {
            k: normalised(v, keep_managed_fields=keep_managed_fields, key=k)
            for k, v in value.items()
            if keep_managed_fields or k != "managedFields"
        }
    if isinstance(value, list):
        if key == "clusterIPs":
            return ["<clusterIP>" for _ in value]
        return [normalised(item, keep_managed_fields=keep_managed_fields) for item in value]
    if not isinstance(value, str):
        return value
    if key == "uid":
        return "<uid>"
    if key == "resourceVersion":
        return "<rv>"
    if key in _TIME_KEYS:
        return "<time>"
    if key == "clusterIP" and value not in ("", "None"):
        return "<clusterIP>"
    if key == "continue" and value:
        return "<continue>"
    if key == "message":
        value = _PARENTHESISED_NUMBER.sub("(<rv>)", value)
    return value.replace(NAMESPACE, "<ns>")


def watch_events_differ(exchange: Exchange, events: list[Obj]) -> str | None:
    """Event types must match (bookmarks aside, whose arrival depends on timing); ERROR events
    must match whole; a bookmark carries only kind, apiVersion and its resourceVersion."""
    for event in events:
        if event["type"] == "BOOKMARK":
            obj = event["object"]
            if set(obj) != {"kind", "apiVersion", "metadata"} or set(obj["metadata"]) != {
                    "resourceVersion"}:
                return f"a BOOKMARK carries more than it should: {obj}"
    seen = [event for event in events if event["type"] != "BOOKMARK"]
    expected = exchange.response["events"]
    if [e["type"] for e in seen] != [e["type"] for e in expected]:
        return (f"event types {[e['type'] for e in seen]} != recorded "
                f"{[e['type'] for e in expected]}")
    for got, want in zip(seen, expected, strict=True):
        if want["type"] == "ERROR":
            actual = normalised(got["object"], keep_managed_fields=False)
            if actual != want["object"]:
                return describe(want["object"], actual)
    return None


def describe(expected: Any, actual: Any) -> str:
    def lines(value: Any) -> list[str]:
        return json.dumps(value, indent=1, sort_keys=True).splitlines()

    diff = difflib.unified_diff(lines(expected), lines(actual), "recorded", "emulator",
                                lineterm="", n=2)
    return "\n".join(diff)


# --- the replay --------------------------------------------------------------------------

class Replay:
    """Sends the exchanges in order and keeps, per exchange, what differs (None: nothing)."""

    def __init__(self, emulator: ApiEmulator, session: aiohttp.ClientSession) -> None:
        self._emulator = emulator
        self._session = session
        self._list_version = ""
        self.differences: dict[str, str | None] = {}

    async def run(self, exchanges: list[Exchange]) -> None:
        await self._send("POST", "/api/v1/namespaces", ADMIN_TOKEN,
                         {"metadata": {"name": NAMESPACE}}, "application/json")
        for exchange in exchanges:
            self.differences[exchange.test_id] = await self._replay(exchange)

    async def _send(self, method: str, path: str, token: str, body: Any,
                    content_type: str | None) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
            data = orjson.dumps(body)
        async with self._session.request(method, self._emulator.url + path, data=data,
                                         headers=headers) as response:
            return response.status, await response.read()

    async def _replay(self, exchange: Exchange) -> str | None:
        request = exchange.request
        if exchange.name == "watch-too-old-rv-410":
            self._emulator.compact()
        token = USER_TOKEN if exchange.name in AS_USER else ADMIN_TOKEN
        body = request_body(request["body"]) if request["body"] is not None else None
        status, raw = await self._send(request["method"], request_path(exchange,
                                       self._list_version), token, body, request["contentType"])
        if status != exchange.response["status"]:
            return (f"status {status} != recorded {exchange.response['status']}: "
                    f"{raw.decode(errors='replace')[:2000]}")
        if "events" in exchange.response:
            events = [orjson.loads(line) for line in raw.splitlines() if line.strip()]
            return watch_events_differ(exchange, events)
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answer = raw.decode()
        if isinstance(answer, dict) and answer.get("kind", "").endswith("List"):
            self._list_version = answer["metadata"]["resourceVersion"]
        keep = exchange.name.startswith("apply-")
        actual = normalised(answer, keep_managed_fields=keep)
        if actual != exchange.response["body"]:
            return describe(exchange.response["body"], actual)
        return None


async def replay_all(exchanges: list[Exchange]) -> dict[str, str | None]:
    # One instant for every timestamp, as the recording's writes fell in one second: the
    # order of managedFields entries depends on their times.
    emulator = ApiEmulator(
        crds=all_crds(), token=ADMIN_TOKEN,
        users={USER_TOKEN: EmulatedUser("shiftd-user")}, rbac=USER_RBAC,
        clock=lambda: "2024-01-01T00:00:00Z",
    )
    async with emulator, aiohttp.ClientSession() as session:
        replay = Replay(emulator, session)
        await replay.run(exchanges)
        return replay.differences


EXCHANGES = load_exchanges()


@pytest.fixture(scope="module")
def differences() -> Iterator[dict[str, str | None]]:
    yield asyncio.run(replay_all(EXCHANGES))


def _params() -> list[Any]:
    params = []
    for exchange in EXCHANGES:
        marks = []
        if exchange.name in KNOWN_DIFFERENCES:
            marks.append(pytest.mark.xfail(reason=KNOWN_DIFFERENCES[exchange.name], strict=True))
        params.append(pytest.param(exchange, id=exchange.test_id, marks=marks))
    return params


def test_the_transcripts_hold_all_64_exchanges_in_five_files() -> None:
    assert len(EXCHANGES) == 64
    assert len({exchange.test_id for exchange in EXCHANGES}) == 64


@pytest.mark.parametrize("exchange", _params())
def test_the_emulator_answers_the_exchange_as_the_real_server_did(
    exchange: Exchange, differences: dict[str, str | None]
) -> None:
    difference = differences[exchange.test_id]
    assert difference is None, f"{exchange.request['method']} {exchange.request['path']}:\n" \
                               f"{difference}"
