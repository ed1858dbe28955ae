"""Fuzzing what users write, against the running daemon on the API server (under
deploy/rbac.yaml, invariant monitor on): while a good Rollout goes through its canary,
hypothesis-made Rollouts and AnalysisTemplates (a valid one with fields changed to arbitrary
JSON) are created next to it.

What must hold: the API server refuses what its schema refuses; the daemon never crashes (no
reconcile raises) nor hangs (the good Rollout finishes); every Rollout it cannot run carries
an InvalidSpec condition whose message names a field (and one it can parse is not refused);
nothing of a user's object outside its status is changed, and templates not at all. A fixed
batch in CI (``tests.support.fuzzing``); ``SHIFTD_FUZZ_EXAMPLES`` for the long form.
"""

from __future__ import annotations

import copy
import functools
import logging
from typing import Any

import pytest

from shiftd.kube.errors import Invalid
from shiftd.kube.resources import ANALYSIS_TEMPLATE, ROLLOUT
from shiftd.model.argo.rollout import InvalidSpecError, parse_rollout
from shiftd.runtime.clock import ManualClock
from shiftd.sim.schema import compile_processor
from tests.integration.daemon_support import basic_rollout, running_daemon
from tests.integration.harness import Cluster, default_crds, test_cluster
from tests.support.fuzzing import ROLLOUT_EXTRA_FIELDS, Mutation, drawn, mutations

Obj = dict[str, Any]
GOOD = "good"
BAD_BASE = basic_rollout("bad", steps=[{"setWeight": 50}, {"pause": {"duration": "30s"}}])
TEMPLATE: Obj = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
    "metadata": {"name": "template"},
    "spec": {"args": [{"name": "service"}],
             "metrics": [{"name": "ok", "interval": "10s", "successCondition": "result == 1",
                          "provider": {"web": {"url": "http://{{args.service}}/ok"}}}]},
}


def _processor(kind: str) -> Any:
    """The installed CRD's schema for ``kind``, as the API server applies it."""
    (crd,) = [d for d in default_crds() if d["spec"]["names"]["kind"] == kind]
    (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
    return compile_processor(version["schema"]["openAPIV3Schema"])


SCHEMAS = {kind: _processor(kind) for kind in ("Rollout", "AnalysisTemplate")}


def schema_valid(document: Obj, kind: str) -> bool:
    return not SCHEMAS[kind](copy.deepcopy(document), None)[1]


def batch(document: Obj, *, extra_fields: tuple[Any, ...] = (), default: int) -> list[Mutation]:
    """Half of the changes anything (mostly refused by the schema), half what the schema lets
    through (which only shiftd can judge)."""
    kind = document["kind"]
    changes = mutations(document, under=("spec",), extra_fields=extra_fields)
    return [*drawn(changes, default=default),
            *drawn(changes.filter(lambda m: schema_valid(m.applied(document), kind)),
                   default=default)]


def users_part(obj: Obj) -> Obj:
    """What belongs to the user: the spec and the labels and annotations."""
    metadata = obj.get("metadata") or {}
    return {"spec": obj.get("spec"), "labels": metadata.get("labels"),
            "annotations": metadata.get("annotations")}


def named(obj: Obj, name: str) -> Obj:
    result = copy.deepcopy(obj)
    result["metadata"] = {**(result.get("metadata") or {}), "name": name}
    result["metadata"].pop("namespace", None)
    return result


def using_template(name: str, template: str) -> Obj:
    rollout = named(BAD_BASE, name)
    rollout["spec"]["strategy"]["canary"]["analysis"] = {
        "templates": [{"templateName": template}], "args": [{"name": "service",
                                                             "value": "svc"}]}
    return rollout


async def create(cluster: Cluster, kind: Any, obj: Obj) -> Obj | None:
    """The object as stored, or None when the server's schema refuses it (422)."""
    try:
        return await cluster.client.create(kind, cluster.namespace, obj)
    except Invalid:
        return None


def parses(stored: Obj) -> bool:
    try:
        parse_rollout(stored)
    except InvalidSpecError:
        return False
    return True


async def judged(cluster: Cluster, name: str) -> Obj | None:
    """The Rollout's status once the daemon has written one."""
    status = (await cluster.rollout(name)).get("status") or {}
    return status if status.get("phase") else None


def invalid_spec(status: Obj) -> str | None:
    return next((str(c.get("message")) for c in status.get("conditions") or ()
                 if c.get("reason") == "InvalidSpec"), None)


async def test_fuzzed_rollouts_and_templates_never_stop_the_daemon_nor_the_good_rollout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rollouts = batch(BAD_BASE, extra_fields=ROLLOUT_EXTRA_FIELDS, default=8)
    templates = batch(TEMPLATE, default=3)
    clock = ManualClock()
    caplog.set_level(logging.ERROR, logger="shiftd")
    async with test_cluster() as cluster, cluster.kubelet(), \
            running_daemon(cluster, clock=clock):
        good = basic_rollout(GOOD, steps=[{"setWeight": 50}, {"pause": {"duration": "30s"}}])
        await cluster.client.create(ROLLOUT, cluster.namespace, good)
        await cluster.wait_for(lambda: phase_is(cluster, GOOD, "Healthy"), what="good Healthy")
        await cluster.set_image(GOOD, "nginx:1.27")

        stored: dict[str, tuple[Obj, str]] = {}  # name -> (as created, what was changed)
        for index, mutation in enumerate(rollouts):
            created = await create(cluster, ROLLOUT, mutation.applied(named(BAD_BASE,
                                                                            f"bad-{index}")))
            if created is not None:
                stored[f"bad-{index}"] = (created, mutation.describe())
        kept_templates: dict[str, Obj] = {}
        for index, mutation in enumerate(templates):
            name = f"template-{index}"
            created = await create(cluster, ANALYSIS_TEMPLATE,
                                   mutation.applied(named(TEMPLATE, name)))
            if created is None:
                continue
            kept_templates[name] = created
            user = await create(cluster, ROLLOUT, using_template(f"uses-{index}", name))
            assert user is not None
            stored[f"uses-{index}"] = (user, f"template {name}: {mutation.describe()}")

        async def good_finished() -> bool:
            clock.advance(10)
            return await phase_is(cluster, GOOD, "Healthy", image="nginx:1.27")

        await cluster.wait_for(good_finished, timeout=30, what="the good Rollout finished")
        for name, (created, changed) in stored.items():
            status = await cluster.wait_for(functools.partial(judged, cluster, name),
                                            what=f"{name} ({changed}) judged")
            message = invalid_spec(status)
            assert message is None or "spec." in message, (name, changed, message)
            assert message is not None or parses(created), (name, changed, status)
            now = await cluster.rollout(name)
            assert users_part(now) == users_part(created), (name, changed)
        for name, created in kept_templates.items():
            now = await cluster.client.get(ANALYSIS_TEMPLATE, cluster.namespace, name)
            assert now["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    print(f"fuzz: {len(rollouts)} Rollouts and {len(templates)} AnalysisTemplates generated, "
          f"{len(stored)} Rollouts and {len(kept_templates)} templates accepted")
    crashes = [r.getMessage() for r in caplog.records if "crashed" in r.getMessage()]
    assert crashes == []


async def phase_is(cluster: Cluster, name: str, phase: str, *, image: str | None = None
                   ) -> bool:
    rollout = await cluster.rollout(name)
    status = rollout.get("status") or {}
    if image is not None and rollout["spec"]["template"]["spec"]["containers"][0][
            "image"] != image:
        return False
    return bool(status.get("phase") == phase
                and status.get("stableRS") == status.get("currentPodHash"))
