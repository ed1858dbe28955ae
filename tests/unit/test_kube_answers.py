"""Parse each written object once: which watch lines the client turns into events without
parsing them (the write's answer was parsed and the cache holds exactly that version)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shiftd.kube.answers import ParseOnce, WrittenVersions, parse_lines
from shiftd.kube.errors import TransportError
from shiftd.kube.resources import NAMESPACE, ROLLOUT, VIRTUAL_SERVICE, ResourceKind
from shiftd.kube.watchstream import WatchEvent
from shiftd.kube.wire import Target

WEB = Target(ROLLOUT, "shop", "web")


def line(event_type: str, name: str, version: str, namespace: str = "shop") -> bytes:
    return orjson.dumps({"type": event_type, "object": {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": version},
        "spec": {"replicas": 1}}})


class Cache:
    """What the caches hold: (plural, namespace, name) -> version."""

    def __init__(self, **versions: str) -> None:
        self.versions = {("rollouts", "shop", name): version
                         for name, version in versions.items()}

    def holding(self, kind: ResourceKind, namespace: str | None, name: str,
                version: str) -> dict[str, Any] | None:
        held = self.versions.get((kind.plural, namespace, name))
        return {"cached": True} if held == version else None


def test_a_line_of_a_parsed_answers_version_the_cache_holds_becomes_a_name_and_version(
) -> None:
    written = WrittenVersions()
    written.note(WEB, "8")
    event = written.known_event(ROLLOUT, line("MODIFIED", "web", "8"), Cache(web="8").holding)
    assert event == WatchEvent(type="MODIFIED", object={
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "8"}})
    assert len(written) == 0  # a version is used once


@pytest.mark.parametrize(
    ("noted", "cached", "event_line", "kind", "why"),
    [
        (None, "8", line("MODIFIED", "web", "8"), ROLLOUT, "no answer of that version parsed"),
        ("8", "9", line("MODIFIED", "web", "8"), ROLLOUT, "the cache moved on since"),
        ("8", None, line("MODIFIED", "web", "8"), ROLLOUT, "the cache dropped it (deleted)"),
        ("8", "8", line("DELETED", "web", "8"), ROLLOUT, "a deletion is always parsed"),
        ("8", "8", line("MODIFIED", "web", "8"), VIRTUAL_SERVICE, "another kind's version"),
        ("8", "8", b" " + line("MODIFIED", "web", "8"), ROLLOUT, "not the server's spelling"),
    ],
)
def test_any_other_line_is_left_to_the_parser(
    noted: str | None, cached: str | None, event_line: bytes, kind: ResourceKind, why: str,
) -> None:
    written = WrittenVersions()
    if noted is not None:
        written.note(WEB, noted)
    cache = Cache(**({"web": cached} if cached is not None else {}))
    assert written.known_event(kind, event_line, cache.holding) is None, why


def test_a_cluster_scoped_objects_event_has_no_namespace() -> None:
    written = WrittenVersions()
    written.note(Target(NAMESPACE, None, "shop"), "3")
    event_line = orjson.dumps({"type": "ADDED", "object": {
        "kind": "Namespace", "metadata": {"name": "shop", "resourceVersion": "3"}}})
    event = written.known_event(NAMESPACE, event_line, lambda *_: {"cached": True})
    assert event is not None and event.type == "ADDED"
    assert event.object["metadata"] == {"name": "shop", "resourceVersion": "3"}


def test_noted_versions_never_seen_again_are_forgotten_past_a_bound() -> None:
    written = WrittenVersions()
    for version in range(5000):
        written.note(WEB, str(version))
    assert 0 < len(written) <= 2048
    assert written.known_event(ROLLOUT, line("MODIFIED", "web", "4999"),
                               Cache(web="4999").holding) is not None


def test_a_parsed_answer_is_cached_at_once_and_its_watch_line_then_not_parsed() -> None:
    cache = Cache()
    remembered: list[tuple[str, dict[str, Any]]] = []

    def remember(kind: ResourceKind, answer: dict[str, Any]) -> None:
        remembered.append((kind.plural, answer))
        cache.versions[(kind.plural, "shop", answer["metadata"]["name"])] = answer[
            "metadata"]["resourceVersion"]

    once = ParseOnce(holding=cache.holding, remember=remember)
    answer = orjson.loads(line("MODIFIED", "web", "8"))["object"]
    once.parsed(WEB, "8", answer)
    assert remembered == [("rollouts", answer)]
    lines = [line("MODIFIED", "web", "8"), line("MODIFIED", "api", "9")]
    documents = list(parse_lines(lines, ROLLOUT, once=once))
    assert isinstance(documents[0], WatchEvent)
    assert documents[0].object["metadata"] == {"name": "web", "namespace": "shop",
                                               "resourceVersion": "8"}
    assert documents[1] == orjson.loads(lines[1])


def test_without_the_caches_every_line_is_parsed_and_a_malformed_one_fails_in_its_turn(
) -> None:
    lines = [line("MODIFIED", "web", "8"), b"{not json", line("MODIFIED", "api", "9")]
    documents = parse_lines(lines, ROLLOUT, once=None)
    assert next(documents) == orjson.loads(lines[0])  # parsed only when asked for
    with pytest.raises(TransportError):
        next(documents)
