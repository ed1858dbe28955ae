"""Shared parts of cached objects: equal containers held once, nothing else changed, and the
ones no object uses any more released; returning the freed heap is harmless anywhere."""

from __future__ import annotations

import ctypes
import sys
from typing import Any

import orjson
import pytest

from shiftd.runtime.heap import heap_trimmer
from shiftd.runtime.sharing import SharedParts

Obj = dict[str, Any]


def replica_set(name: str, *, owner_uid: str = "uid-web", replicas: Any = 1) -> Obj:
    labels = {"app": "web", "rollouts-pod-template-hash": name}
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"web-{name}", "namespace": "shop", "uid": f"uid-{name}",
                     "resourceVersion": "7", "labels": dict(labels),
                     "ownerReferences": [{"kind": "Rollout", "name": "web", "uid": owner_uid,
                                          "controller": True}]},
        "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                 "template": {"metadata": {"labels": dict(labels)}}},
        "status": {"replicas": 1, "readyReplicas": 1},
    }


def test_equal_parts_of_two_objects_are_one_container_and_the_objects_are_unchanged() -> None:
    shared = SharedParts()
    old, new = replica_set("aaa"), replica_set("bbb")
    expected = [orjson.dumps(old), orjson.dumps(new)]

    first, second = shared.share(old), shared.share(new)

    assert [orjson.dumps(first), orjson.dumps(second)] == expected
    assert first["metadata"]["ownerReferences"] is second["metadata"]["ownerReferences"]
    assert first["status"] is second["status"]
    labels = first["metadata"]["labels"]
    assert labels is first["spec"]["selector"]["matchLabels"]
    assert labels is first["spec"]["template"]["metadata"]["labels"]
    assert first["metadata"]["labels"] is not second["metadata"]["labels"]


def test_metadata_itself_is_never_shared_even_when_equal() -> None:
    shared = SharedParts()
    one, other = shared.share(replica_set("aaa")), shared.share(replica_set("aaa"))

    assert one["metadata"] is not other["metadata"]
    assert one["spec"] is other["spec"]


def test_values_equal_in_python_but_not_in_json_are_not_shared() -> None:
    shared = SharedParts()
    as_int = shared.share(replica_set("aaa", replicas=1))
    as_bool = shared.share(replica_set("aaa", replicas=True))
    as_float = shared.share(replica_set("aaa", replicas=1.0))

    assert as_bool["spec"]["replicas"] is True
    assert as_float["spec"]["replicas"] == 1.0 and isinstance(as_float["spec"]["replicas"], float)
    assert as_int["spec"] is not as_bool["spec"]
    assert as_int["spec"] is not as_float["spec"]


def test_dicts_with_the_same_items_in_another_order_are_not_shared() -> None:
    shared = SharedParts()
    one = shared.share({"metadata": {}, "spec": {"a": 1, "b": 2}})
    other = shared.share({"metadata": {}, "spec": {"b": 2, "a": 1}})

    assert list(other["spec"]) == ["b", "a"]
    assert one["spec"] is not other["spec"]


def rollout_copy(*, version: str, weight: Any, updated: str, order: str = "ab") -> Obj:
    """A Rollout as a status write answers it: metadata, spec and conditions mostly as before."""
    message = " ".join(["RolloutCompleted: revision 2 is fully promoted", "x" * 80])
    spec = {"replicas": 1, "strategy": {"canary": {"steps": [{"setWeight": 10}, {"pause": {}}]}}}
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web", "generation": 2,
                     "resourceVersion": version, "labels": {"app": "web"}},
        "spec": spec,
        "status": {
            "currentStepIndex": 1,
            "canary": {"weights": {"canary": {"weight": weight}, "stable": {"weight": 90}}},
            "conditions": [
                {"type": "Available", "status": "True", "message": message,
                 "lastUpdateTime": "2026-12-01T10:00:00Z"},
                {"type": "Progressing", "status": "True", "message": message,
                 "lastUpdateTime": updated},
            ],
            "extra": {"a": 1, "b": 2} if order == "ab" else {"b": 2, "a": 1},
        },
    }


def test_a_new_copy_takes_the_parts_it_shares_with_the_copy_it_replaces() -> None:
    shared = SharedParts()
    before = shared.share(rollout_copy(version="1", weight=10, updated="2026-12-01T10:00:00Z"))
    new = rollout_copy(version="2", weight=10, updated="2026-12-01T10:01:00Z")
    new_message = new["status"]["conditions"][1]["message"]
    expected = orjson.dumps(new)

    after = shared.share(new, before)

    assert orjson.dumps(after) == expected
    assert after["spec"] is before["spec"]  # same generation
    assert after["metadata"]["labels"] is before["metadata"]["labels"]
    assert after["status"]["canary"] is before["status"]["canary"]
    available, progressing = after["status"]["conditions"]
    assert available is before["status"]["conditions"][0]
    assert progressing is not before["status"]["conditions"][1]
    # a string equal to the previous copy's is that string, even one too long to intern
    assert progressing["message"] is before["status"]["conditions"][1]["message"]
    assert progressing["message"] is not new_message
    # a changed string is interned
    assert progressing["lastUpdateTime"] is sys.intern("2026-12-01T10:01:00Z")


def test_a_part_equal_in_python_but_not_in_json_is_not_taken_from_the_previous_copy() -> None:
    shared = SharedParts()
    before = shared.share(rollout_copy(version="1", weight=10, updated="t1"))

    as_float = shared.share(rollout_copy(version="2", weight=10.0, updated="t1"), before)
    reordered = shared.share(rollout_copy(version="3", weight=10, updated="t1", order="ba"),
                             before)

    weight = as_float["status"]["canary"]["weights"]["canary"]["weight"]
    assert isinstance(weight, float)
    assert as_float["status"]["canary"] is not before["status"]["canary"]
    assert list(reordered["status"]["extra"]) == ["b", "a"]
    assert reordered["status"]["conditions"] is before["status"]["conditions"]


def test_only_parts_two_containers_use_stay_held_once_the_others_are_released() -> None:
    shared = SharedParts()
    one = shared.share(replica_set("aaa"))
    other = shared.share(replica_set("bbb"))
    lone = shared.share(replica_set("ccc", owner_uid="uid-lone"))

    shared.release()

    # held: the two ownerReferences (lone's too: the next object its owner makes will carry
    # them), the status (all three's), and each one's labels (metadata.labels is also its
    # selector's and its template's); not the reference dicts inside the lists, each used
    # once (by its list), nor the selectors and templates, each used once
    assert len(shared) == 6
    again = shared.share(replica_set("ddd"))
    assert again["metadata"]["ownerReferences"] is one["metadata"]["ownerReferences"]
    assert again["status"] is lone["status"]
    assert shared.share(replica_set("eee", owner_uid="uid-lone"))["metadata"][
        "ownerReferences"] is lone["metadata"]["ownerReferences"]
    before = len(shared)
    del one, other, again
    shared.release()
    assert len(shared) < before
    del lone
    shared.release()
    assert len(shared) == 0


def test_returning_the_freed_heap_does_nothing_where_the_c_library_has_no_malloc_trim(
        monkeypatch: pytest.MonkeyPatch) -> None:
    class Musl:  # a C library without malloc_trim (musl, macOS)
        def __init__(self, name: object) -> None:
            pass

    monkeypatch.setattr(ctypes, "CDLL", Musl)

    assert heap_trimmer()() is False


def test_returning_the_freed_heap_calls_malloc_trim_where_glibc_has_it() -> None:
    if not hasattr(ctypes.CDLL(None), "malloc_trim"):
        pytest.skip("this C library has no malloc_trim")
    # free blocks of whole pages between blocks still in use: only a trim gives them back
    pairs = [(bytearray(16_384), bytearray(600)) for _ in range(1_000)]
    kept = [small for _, small in pairs]
    del pairs

    assert heap_trimmer()() is True
    assert len(kept) == 1_000
