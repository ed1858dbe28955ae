"""Informer behaviour against a scripted list/watch client: sync, resume, relist, back-off."""

from __future__ import annotations

import copy
import sys
from collections import deque
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from shiftd.kube.client import WatchEvent
from shiftd.kube.errors import CannotConnect, ConnectionFailed, Gone
from shiftd.kube.informer import LAST_APPLIED, Informer, strip_unread_fields
from shiftd.kube.resources import NAMESPACE, ROLLOUT, ResourceKind

Obj = dict[str, Any]
END = "end of stream"  # a watch script step: the server closes the stream cleanly
ListResult = tuple[list[Obj], str] | Exception
Step = WatchEvent | Exception | str


def obj(name: str, version: int, namespace: str = "shop") -> Obj:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": str(version)}}


def event(event_type: str, name: str, version: int, namespace: str = "shop") -> WatchEvent:
    return WatchEvent(type=event_type, object=obj(name, version, namespace))  # type: ignore[arg-type]


def bookmark(version: int) -> WatchEvent:
    return WatchEvent(type="BOOKMARK", object={"metadata": {"resourceVersion": str(version)}})


class Progress:
    """Something tests can wait on, ticked whenever the informer does anything."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def tick(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    async def until(self, condition: Callable[[], bool], *, within: float = 5.0) -> None:
        with anyio.fail_after(within):
            while not condition():
                await self._event.wait()


class ScriptedApi:
    """A ListWatchClient whose list answers and watch streams each test scripts per namespace.

    A list script's last answer repeats; a watch with no script left stays open silently.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.list_answers: dict[str | None, deque[ListResult]] = {}
        self.watch_scripts: dict[str | None, deque[list[Step]]] = {}
        self.lists: list[str | None] = []
        self.watches: list[tuple[str | None, str]] = []

    def answer_lists(self, namespace: str | None, *answers: ListResult) -> None:
        self.list_answers.setdefault(namespace, deque()).extend(answers)

    def script_watch(self, namespace: str | None, *steps: Step) -> None:
        self.watch_scripts.setdefault(namespace, deque()).append(list(steps))

    async def list(
        self,
        kind: ResourceKind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[Obj], str]:
        await anyio.lowlevel.checkpoint()
        self.lists.append(namespace)
        self.progress.tick()
        answers = self.list_answers[namespace]
        answer = answers.popleft() if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        items, version = answer
        return copy.deepcopy(items), version

    async def watch(
        self,
        kind: ResourceKind,
        namespace: str | None = None,
        *,
        resource_version: str,
        label_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
    ) -> AsyncGenerator[WatchEvent, None]:
        self.watches.append((namespace, resource_version))
        self.progress.tick()
        scripts = self.watch_scripts.get(namespace)
        for step in scripts.popleft() if scripts else []:
            await anyio.lowlevel.checkpoint()
            if step == END:
                return
            if isinstance(step, Exception):
                raise step
            assert isinstance(step, WatchEvent)
            yield copy.deepcopy(step)
        await anyio.sleep_forever()


class Harness:
    def __init__(self) -> None:
        self.progress = Progress()
        self.api = ScriptedApi(self.progress)
        self.changes: list[tuple[str, str, str]] = []
        self.restarts = 0

    def informer(
        self, kind: ResourceKind = ROLLOUT, namespaces: list[str] | None = None
    ) -> Informer:
        return Informer(
            self.api,
            kind,
            namespaces=namespaces,
            on_change=self._changed,
            on_restart=self._restarted,
            min_backoff=0.001,
            max_backoff=0.01,
        )

    def _changed(self, event_type: str, changed: Obj) -> None:
        meta = changed["metadata"]
        self.changes.append((event_type, meta["name"], meta["resourceVersion"]))
        self.progress.tick()

    def _restarted(self) -> None:
        self.restarts += 1
        self.progress.tick()


@pytest.fixture
def harness() -> Harness:
    return Harness()


def names(informer: Informer, namespace: str | None = None) -> list[tuple[str, str]]:
    return sorted(
        (o["metadata"]["name"], o["metadata"]["resourceVersion"]) for o in informer.items(namespace)
    )


async def test_run_reports_started_once_the_initial_list_is_cached(harness: Harness) -> None:
    harness.api.answer_lists(None, ([obj("a", 5), obj("b", 6, "other")], "10"))
    informer = harness.informer()
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        assert informer.synced.is_set()
        assert harness.changes == [("ADDED", "a", "5"), ("ADDED", "b", "6")]
        assert informer.get("shop", "a") == obj("a", 5)
        assert informer.get("shop", "b") is None
        assert names(informer) == [("a", "5"), ("b", "6")]
        assert names(informer, "other") == [("b", "6")]
        await harness.progress.until(lambda: harness.api.watches == [(None, "10")])
        tg.cancel_scope.cancel()


async def test_watch_events_add_modify_and_delete_cached_objects(harness: Harness) -> None:
    harness.api.answer_lists(None, ([obj("a", 5), obj("b", 6)], "10"))
    harness.api.script_watch(
        None, event("ADDED", "c", 11), event("MODIFIED", "a", 12), event("DELETED", "b", 13)
    )
    informer = harness.informer()
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        await harness.progress.until(lambda: len(harness.changes) == 5)
        assert harness.changes[2:] == [
            ("ADDED", "c", "11"),
            ("MODIFIED", "a", "12"),
            ("DELETED", "b", "13"),
        ]
        assert names(informer) == [("a", "12"), ("c", "11")]
        tg.cancel_scope.cancel()


async def test_an_event_older_than_the_cached_object_is_ignored(harness: Harness) -> None:
    # The list's object is newer than the list itself claims; a watch event in between is stale.
    harness.api.answer_lists(None, ([obj("a", 30)], "20"))
    harness.api.script_watch(None, event("MODIFIED", "a", 25), event("ADDED", "z", 31))
    informer = harness.informer()
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        await harness.progress.until(lambda: len(harness.changes) == 2)
        assert harness.changes == [("ADDED", "a", "30"), ("ADDED", "z", "31")]
        assert names(informer) == [("a", "30"), ("z", "31")]
        tg.cancel_scope.cancel()


async def test_a_closed_watch_resumes_from_the_last_bookmark_without_relisting(
    harness: Harness,
) -> None:
    harness.api.answer_lists(None, ([], "10"))
    harness.api.script_watch(None, bookmark(15), END)
    informer = harness.informer()
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        await harness.progress.until(lambda: len(harness.api.watches) == 2)
        assert harness.api.watches == [(None, "10"), (None, "15")]
        assert (harness.api.lists, harness.restarts, harness.changes) == ([None], 0, [])
        tg.cancel_scope.cancel()


async def test_a_broken_connection_resumes_from_the_last_version_and_counts_a_restart(
    harness: Harness,
) -> None:
    harness.api.answer_lists(None, ([obj("a", 5)], "10"))
    harness.api.script_watch(None, event("ADDED", "c", 11), ConnectionFailed("reset"))
    harness.api.script_watch(None, ConnectionFailed("refused"))
    informer = harness.informer()
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        await harness.progress.until(lambda: len(harness.api.watches) == 3)
        assert harness.api.watches == [(None, "10"), (None, "11"), (None, "11")]
        assert harness.api.lists == [None]
        assert harness.restarts == 2
        tg.cancel_scope.cancel()


async def test_after_the_server_could_not_be_reached_the_watch_relists_instead_of_resuming(
    harness: Harness,
) -> None:
    harness.api.answer_lists(None, ([obj("a", 5)], "10"), CannotConnect("refused"), ([], "3"))
    harness.api.script_watch(None, CannotConnect("refused"))
    informer = harness.informer()
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        await harness.progress.until(lambda: len(harness.api.watches) == 2)
        assert harness.api.watches == [(None, "10"), (None, "3")]
        assert harness.api.lists == [None, None, None]
        assert harness.changes == [("ADDED", "a", "5"), ("DELETED", "a", "5")]
        assert harness.restarts == 2
        tg.cancel_scope.cancel()


async def test_gone_relists_and_reports_what_vanished_changed_and_appeared(
    harness: Harness,
) -> None:
    harness.api.answer_lists(
        None,
        ([obj("a", 5), obj("b", 6), obj("same", 7)], "10"),
        ([obj("a", 12), obj("same", 7), obj("c", 13)], "14"),
    )
    harness.api.script_watch(None, Gone(410, "Expired", "too old resource version"))
    informer = harness.informer()
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        await harness.progress.until(lambda: len(harness.api.watches) == 2)
        assert harness.changes[3:] == [
            ("DELETED", "b", "6"),
            ("MODIFIED", "a", "12"),
            ("ADDED", "c", "13"),
        ]
        assert names(informer) == [("a", "12"), ("c", "13"), ("same", "7")]
        assert harness.api.watches[1] == (None, "14")
        assert harness.restarts == 1
        tg.cancel_scope.cancel()


async def test_versions_older_than_the_watch_start_mean_a_rebuilt_server_and_relist(
    harness: Harness,
) -> None:
    harness.api.answer_lists(None, ([obj("a", 5)], "10"), ([obj("x", 3)], "4"))
    harness.api.script_watch(None, event("ADDED", "x", 3))
    informer = harness.informer()
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        await harness.progress.until(lambda: len(harness.api.watches) == 2)
        assert harness.changes == [("ADDED", "a", "5"), ("DELETED", "a", "5"), ("ADDED", "x", "3")]
        assert harness.api.watches == [(None, "10"), (None, "4")]
        tg.cancel_scope.cancel()


async def test_each_listed_namespace_gets_its_own_list_and_watch(harness: Harness) -> None:
    harness.api.answer_lists("a", ([obj("one", 5, "a")], "10"))
    harness.api.answer_lists("b", ([obj("two", 6, "b")], "11"))
    harness.api.script_watch("b", Gone(410, "Expired", ""))
    harness.api.answer_lists("b", ([], "12"))
    informer = harness.informer(namespaces=["a", "b", "a"])
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        await harness.progress.until(lambda: len(harness.api.watches) == 3)
        assert sorted(harness.api.lists, key=str) == ["a", "b", "b"]
        assert names(informer, "a") == [("one", "5")]
        assert names(informer, "b") == []
        assert ("DELETED", "two", "6") in harness.changes
        tg.cancel_scope.cancel()


async def test_cluster_scoped_kinds_are_listed_once_whatever_the_namespaces(
    harness: Harness,
) -> None:
    harness.api.answer_lists(None, ([{"metadata": {"name": "n", "resourceVersion": "1"}}], "2"))
    informer = harness.informer(NAMESPACE, namespaces=["a", "b"])
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        assert harness.api.lists == [None]
        assert informer.get(None, "n") is not None
        tg.cancel_scope.cancel()


async def test_a_failing_initial_list_is_retried_until_it_succeeds(harness: Harness) -> None:
    harness.api.answer_lists(None, ConnectionFailed("refused"), ([obj("a", 5)], "10"))
    informer = harness.informer()
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        assert harness.api.lists == [None, None]
        assert harness.changes == [("ADDED", "a", "5")]
        tg.cancel_scope.cancel()


async def test_a_watch_the_server_closes_at_once_counts_as_a_failure(harness: Harness) -> None:
    harness.api.answer_lists(None, ([], "10"))
    harness.api.script_watch(None, END)
    informer = harness.informer()
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        await harness.progress.until(lambda: len(harness.api.watches) == 2)
        assert harness.restarts == 1
        tg.cancel_scope.cancel()


def test_cached_objects_drop_managed_fields_and_the_last_applied_annotation() -> None:
    served = {"metadata": {"name": "a", "namespace": "shop", "resourceVersion": "3",
                           "managedFields": [{"manager": "kubectl", "operation": "Update"}],
                           "annotations": {LAST_APPLIED: "{...}", "keep": "me"}},
              "spec": {"replicas": 2}}
    assert strip_unread_fields(served) == {
        "metadata": {"name": "a", "namespace": "shop", "resourceVersion": "3",
                     "annotations": {"keep": "me"}},
        "spec": {"replicas": 2}}


async def test_the_informer_caches_listed_watched_and_remembered_objects_transformed() -> None:
    progress = Progress()
    api = ScriptedApi(progress)
    listed = obj("a", 1)
    listed["metadata"]["managedFields"] = [{"manager": "x"}]
    api.answer_lists("shop", ([listed], "1"))
    watched = obj("b", 2)
    watched["metadata"]["managedFields"] = [{"manager": "x"}]
    api.script_watch("shop", WatchEvent(type="ADDED", object=watched), END)  # then a re-watch
    informer = Informer(api, ROLLOUT, namespaces=["shop"], on_change=lambda *_: None,
                        min_backoff=0.001)
    async with anyio.create_task_group() as group:
        await group.start(informer.run)
        await progress.until(lambda: informer.get("shop", "b") is not None)
        remembered = obj("c", 3)
        remembered["metadata"]["managedFields"] = [{"manager": "x"}]
        informer.remember(remembered)
        group.cancel_scope.cancel()
    for name in ("a", "b", "c"):
        cached = informer.get("shop", name)
        assert cached is not None and "managedFields" not in cached["metadata"]


def generation_copy(version: int, generation: int, spec: Obj, *, uid: str = "u1") -> Obj:
    found = obj("a", version)
    found["metadata"].update(uid=uid, generation=generation)
    found["spec"] = copy.deepcopy(spec)
    found["status"] = {"observed": version}
    return found


async def test_a_newer_copy_of_the_same_generation_shares_the_cached_spec() -> None:
    informer = Informer(ScriptedApi(Progress()), ROLLOUT, namespaces=["shop"],
                        on_change=lambda *_: None)
    informer.remember(generation_copy(1, 1, {"replicas": 2}))
    first = informer.get("shop", "a")
    informer.remember(generation_copy(2, 1, {"replicas": 2}))
    second = informer.get("shop", "a")
    assert first is not None and second is not None
    assert second["status"] == {"observed": 2}
    assert second["spec"] is first["spec"]


async def test_a_new_generation_or_a_new_object_keeps_its_own_spec() -> None:
    informer = Informer(ScriptedApi(Progress()), ROLLOUT, namespaces=["shop"],
                        on_change=lambda *_: None)
    informer.remember(generation_copy(1, 1, {"replicas": 2}))
    informer.remember(generation_copy(2, 2, {"replicas": 3}))
    changed = informer.get("shop", "a")
    assert changed is not None and changed["spec"] == {"replicas": 3}
    informer.remember(generation_copy(3, 2, {"replicas": 4}, uid="u2"))  # recreated
    recreated = informer.get("shop", "a")
    assert recreated is not None and recreated["spec"] == {"replicas": 4}


async def test_equal_strings_of_cached_objects_are_one_string() -> None:
    informer = Informer(ScriptedApi(Progress()), ROLLOUT, namespaces=["shop"],
                        on_change=lambda *_: None)
    for name in ("a", "b"):
        found = obj(name, 1)
        found["status"] = {"phase": "".join(["Hea", "lthy"]), "message": "x" * 65}
        informer.remember(found)
    a, b = informer.get("shop", "a"), informer.get("shop", "b")
    assert a is not None and b is not None
    assert a["status"]["phase"] is b["status"]["phase"]
    assert a["status"]["message"] == b["status"]["message"]


async def test_a_write_answer_of_the_version_already_cached_is_not_cached_again() -> None:
    informer = Informer(ScriptedApi(Progress()), ROLLOUT, namespaces=["shop"],
                        on_change=lambda *_: None)
    informer.remember(obj("a", 4))
    first = informer.get("shop", "a")
    informer.remember(obj("a", 4))
    assert informer.get("shop", "a") is first
    informer.remember(obj("a", 3))
    assert informer.get("shop", "a") is first
    informer.remember(obj("a", 5))
    newer = informer.get("shop", "a")
    assert newer is not first and newer is not None
    assert newer["metadata"]["resourceVersion"] == "5"


async def test_the_cache_says_it_holds_an_object_only_at_exactly_its_cached_version() -> None:
    informer = Informer(ScriptedApi(Progress()), ROLLOUT, namespaces=["shop"],
                        on_change=lambda *_: None)
    informer.remember(obj("a", 4))
    assert informer.holding("shop", "a", "4") is informer.get("shop", "a")
    assert informer.holding("shop", "a", "5") is None
    assert informer.holding("shop", "a", "") is None
    assert informer.holding("shop", "b", "4") is None
    assert informer.holding("other", "a", "4") is None


class GatedApi(ScriptedApi):
    """Watches start only once ``gate`` is set."""

    def __init__(self, progress: Progress) -> None:
        super().__init__(progress)
        self.gate = anyio.Event()

    async def watch(self, kind: ResourceKind, namespace: str | None = None, *,
                    resource_version: str, label_selector: str | None = None,
                    timeout_seconds: int | None = None,
                    allow_bookmarks: bool = True) -> AsyncGenerator[WatchEvent, None]:
        await self.gate.wait()
        async with aclosing(super().watch(kind, namespace, resource_version=resource_version,
                                          timeout_seconds=timeout_seconds)) as events:
            async for found in events:
                yield found


async def test_an_event_naming_only_the_cached_version_just_moves_the_watch_on(
        harness: Harness) -> None:
    # What the client makes of a watch line whose write answer was already cached.
    api = harness.api = GatedApi(harness.progress)
    api.answer_lists(None, ([obj("a", 5)], "10"))
    api.script_watch(None, event("MODIFIED", "a", 12), event("ADDED", "z", 13))
    informer = harness.informer()
    async with anyio.create_task_group() as tg:
        await tg.start(informer.run)
        full = obj("a", 12)
        full["spec"] = {"replicas": 3}
        informer.remember(full)  # the write's answer, before its event
        api.gate.set()
        await harness.progress.until(lambda: len(harness.changes) == 2)
        assert harness.changes == [("ADDED", "a", "5"), ("ADDED", "z", "13")]
        cached = informer.get("shop", "a")
        assert cached is not None and cached["spec"] == {"replicas": 3}
        tg.cancel_scope.cancel()


async def test_an_object_and_its_key_in_the_cache_are_one_name_string(harness: Harness) -> None:
    informer = harness.informer()
    # the name seen before in another object (a Rollout's, then its VirtualService's)
    seen_before = sys.intern("".join(["web-", "key-test"]))
    for version in (1, 2):
        informer.remember(obj("".join(["web-", "key-test"]), version))  # a new string each
    cached = informer.get("shop", "web-key-test")
    assert cached is not None
    (key,) = informer._cache["shop"]
    assert key is cached["metadata"]["name"] is seen_before  # one string, not two
