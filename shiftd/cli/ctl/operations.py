"""The I/O half of each ``shiftctl`` command: read the Rollout, send what the plugin sends.

The patches come from :mod:`shiftd.decide.rollout.operator`; this module only reads the Rollout and
sends them (status through ``/status``, falling back to the main resource when that answers
404, as the plugin does). The integration harness and ``shiftd demo`` drive these coroutines
too, so tests and humans send the very same requests.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from datetime import datetime
from typing import Any

from shiftd.cli.ctl.common import EXIT_FAILED, EXIT_OK, CommandError, Obj, not_found
from shiftd.decide.rollout.operator import (
    OperatorPatch,
    Undo,
    abort_patch,
    owned_replica_sets,
    pause_patch,
    promote_patch,
    restart_patch,
    resume_patch,
    retry_patch,
    rollout_phase,
    set_image,
    undo_patch,
)
from shiftd.kube.client import KubeClient
from shiftd.kube.errors import Conflict, Gone, KubeError, NotFound
from shiftd.kube.resources import (
    DEPLOYMENT,
    REPLICA_SET,
    ROLLOUT,
    ResourceKind,
)

__all__ = [
    "abort_rollout",
    "get_rollout",
    "is_done",
    "owned_replica_sets_of",
    "pause_rollout",
    "promote_rollout",
    "restart_rollout",
    "resume_rollout",
    "retry_rollout",
    "rollout_versions",
    "send_operator_patch",
    "set_rollout_image",
    "undo_rollout",
    "wait_for_rollout",
]

# The plugin retries ``set image`` this many times when the PUT loses a race (409).
SET_IMAGE_ATTEMPTS = 5
_WORKLOAD_KINDS: Mapping[str, ResourceKind] = {"Deployment": DEPLOYMENT,
                                               "ReplicaSet": REPLICA_SET}


# --- the I/O half of each command ------------------------------------------------------------

async def get_rollout(client: KubeClient, *, namespace: str, name: str) -> Obj:
    """The Rollout, or ``CommandError`` naming it and its namespace."""
    try:
        return await client.get(ROLLOUT, namespace, name)
    except NotFound:
        raise not_found(name, namespace) from None


async def send_operator_patch(
    client: KubeClient, *, namespace: str, name: str, patch: OperatorPatch
) -> Obj:
    """Send ``patch`` as the plugin does; returns the Rollout as last written (or read)."""
    spec = patch.spec
    result: Obj | None = None
    try:
        if patch.status is not None:
            try:
                result = await client.patch(ROLLOUT, namespace, name, patch.status,
                                            patch_type="merge", subresource="status")
            except NotFound:
                # No status subresource (Argo v0.9 CRDs): one patch on the main resource.
                spec = patch.unified
        if spec is not None:
            result = await client.patch(ROLLOUT, namespace, name, spec, patch_type="merge")
    except NotFound:
        raise not_found(name, namespace) from None
    if result is None:
        result = await get_rollout(client, namespace=namespace, name=name)
    return result


async def promote_rollout(
    client: KubeClient, *, namespace: str, name: str, full: bool = False
) -> Obj:
    rollout = await get_rollout(client, namespace=namespace, name=name)
    patch = promote_patch(rollout, full=full)
    if patch.empty:
        return rollout
    return await send_operator_patch(client, namespace=namespace, name=name, patch=patch)


async def abort_rollout(client: KubeClient, *, namespace: str, name: str) -> Obj:
    return await send_operator_patch(client, namespace=namespace, name=name,
                                     patch=abort_patch())


async def retry_rollout(client: KubeClient, *, namespace: str, name: str) -> Obj:
    return await send_operator_patch(client, namespace=namespace, name=name,
                                     patch=retry_patch())


async def pause_rollout(client: KubeClient, *, namespace: str, name: str) -> Obj:
    return await send_operator_patch(client, namespace=namespace, name=name,
                                     patch=pause_patch())


async def resume_rollout(client: KubeClient, *, namespace: str, name: str) -> Obj:
    return await send_operator_patch(client, namespace=namespace, name=name,
                                     patch=resume_patch())


async def restart_rollout(
    client: KubeClient, *, namespace: str, name: str, at: datetime
) -> Obj:
    return await send_operator_patch(client, namespace=namespace, name=name,
                                     patch=restart_patch(at=at))


def _workload_kind(rollout: Mapping[str, Any]) -> tuple[ResourceKind, str] | None:
    ref = (rollout.get("spec") or {}).get("workloadRef")
    if not ref:
        return None
    kind = _WORKLOAD_KINDS.get(str(ref.get("kind")))
    if kind is None:
        raise CommandError(f"workload of type {ref.get('kind')} is not supported")
    return kind, str(ref.get("name"))


async def set_rollout_image(
    client: KubeClient, *, namespace: str, name: str, container: str, image: str
) -> Obj:
    """GET, edit and PUT the Rollout (or the Deployment of its workloadRef), retrying a
    lost race a few times; returns the object written."""
    for attempt in range(SET_IMAGE_ATTEMPTS):
        rollout = await get_rollout(client, namespace=namespace, name=name)
        target_kind, target_name, target = ROLLOUT, name, rollout
        if (rollout.get("spec") or {}).get("workloadRef"):
            # The plugin always treats a workloadRef as a Deployment here.
            ref = rollout["spec"]["workloadRef"]
            target_kind, target_name = DEPLOYMENT, str(ref.get("name"))
            target = await client.get(DEPLOYMENT, namespace, target_name)
        edited = set_image(target, container=container, image=image)
        try:
            return await client.replace(target_kind, namespace, target_name, edited)
        except Conflict:
            if attempt + 1 == SET_IMAGE_ATTEMPTS:
                raise
        except NotFound:
            if target_kind is not ROLLOUT:
                raise
            raise not_found(name, namespace) from None
    raise AssertionError("unreachable")


def _selector_text(rollout: Mapping[str, Any]) -> str | None:
    labels = (((rollout.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items())) or None


async def owned_replica_sets_of(client: KubeClient, rollout: Mapping[str, Any]) -> list[Obj]:
    namespace = rollout["metadata"]["namespace"]
    items, _ = await client.list(REPLICA_SET, namespace, label_selector=_selector_text(rollout))
    return [dict(rs) for rs in owned_replica_sets(rollout, items)]


async def undo_rollout(
    client: KubeClient, *, namespace: str, name: str, to_revision: int = 0
) -> Undo:
    """Copy an older revision's template back (into the workloadRef object if any)."""
    rollout = await get_rollout(client, namespace=namespace, name=name)
    undo = undo_patch(rollout, await owned_replica_sets_of(client, rollout),
                      to_revision=to_revision)
    if undo.json_patch is None:
        return undo
    workload = _workload_kind(rollout)
    kind, target = workload if workload is not None else (ROLLOUT, name)
    try:
        await client.patch(kind, namespace, target, undo.json_patch, patch_type="json")
    except KubeError as error:
        raise CommandError(f"failed restoring revision {undo.revision}: {error}") from error
    return undo


# --- reading: get, status --------------------------------------------------------------------

def is_done(rollout: Mapping[str, Any]) -> tuple[int | None, str, str]:
    """``(exit code or None while still going, phase, message)`` for ``status``."""
    phase, message = rollout_phase(rollout)
    if phase == "Healthy":
        return EXIT_OK, phase, message
    if phase == "Degraded":
        return EXIT_FAILED, phase, message
    if (rollout.get("status") or {}).get("abort"):
        # Aborted, and the controller has not yet reported Degraded: it will.
        return EXIT_FAILED, phase, "RolloutAborted: the rollout was aborted"
    return None, phase, message


async def rollout_versions(
    client: KubeClient, *, namespace: str, name: str, start: Obj
) -> AsyncGenerator[Obj, None]:
    """Every new version of the Rollout, from a watch resumed after it ends (relisting on
    410); raises ``CommandError`` when the Rollout is deleted."""
    version = str(start["metadata"].get("resourceVersion") or "")
    while True:
        try:
            async with aclosing(client.watch(ROLLOUT, namespace,
                                             resource_version=version)) as events:
                async for event in events:
                    version = str(event.object.get("metadata", {}).get("resourceVersion")
                                  or version)
                    if event.type == "BOOKMARK" or event.object["metadata"]["name"] != name:
                        continue
                    if event.type == "DELETED":
                        raise CommandError(f'rollout "{name}" was deleted')
                    yield event.object
        except Gone:
            current = await get_rollout(client, namespace=namespace, name=name)
            version = str(current["metadata"].get("resourceVersion") or "")
            yield current


async def wait_for_rollout(
    client: KubeClient,
    *,
    namespace: str,
    name: str,
    on_change: Callable[[str], None] = lambda line: None,
) -> tuple[int, str, str]:
    """Follow the Rollout until Healthy (exit code 0) or Degraded or aborted (1); returns
    ``(code, phase, message)``. ``on_change`` gets each new "Phase - message" line. Bound it
    with a cancel scope (``anyio.move_on_after``)."""
    last_line = ""

    def report(rollout: Mapping[str, Any]) -> tuple[int | None, str, str]:
        nonlocal last_line
        code, phase, message = is_done(rollout)
        line = f"{phase} - {message}" if message else phase
        if line != last_line:
            on_change(line)
            last_line = line
        return code, phase, message

    rollout = await get_rollout(client, namespace=namespace, name=name)
    code, phase, message = report(rollout)
    if code is not None:
        return code, phase, message
    async with aclosing(rollout_versions(client, namespace=namespace, name=name,
                                          start=rollout)) as versions:
        async for rollout in versions:
            code, phase, message = report(rollout)
            if code is not None:
                return code, phase, message
    raise AssertionError("unreachable: the watch only ends by raising")
