"""Admission: what happens to an object between the request and the store.

A custom resource is pruned, defaulted and validated by its CRD version's schema (and its
scale ``specReplicasPath``); a built-in one gets the server's defaults; names, and the pod
selector of ReplicaSets and Deployments, are validated; the writer's fields are recorded in
``metadata.managedFields``. Every failure is the 422 a real server sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shiftd.sim.errors import invalid_fields
from shiftd.sim.kinds import ResourceType
from shiftd.sim.managed import Fields, Manager, changed_fields, record, without_conflicts
from shiftd.sim.managed import Path as FieldPath
from shiftd.sim.patching import copy_document
from shiftd.sim.validation import name_causes, pod_selector_causes, scale_causes

Obj = dict[str, Any]


def now_rfc3339() -> str:
    """The current time as the server writes timestamps (RFC 3339, whole seconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _owned_view(obj: Obj | None, rtype: ResourceType, manager: Manager) -> Obj:
    """The part of an object a write through the main resource (or ``/status``) can own."""
    if obj is None:
        return {}
    if manager.subresource == "status":
        return {"status": obj["status"]} if "status" in obj else {}
    if rtype.status_subresource:
        return {key: value for key, value in obj.items() if key != "status"}
    return obj


def _body_name(body: Obj) -> str:
    meta = body.get("metadata")
    return str(meta.get("name") or "") if isinstance(meta, dict) else ""


def record_fields(rtype: ResourceType, obj: Obj, current: Obj | None, *,
                   manager: Manager, applied: Fields | None,
                   taken: Mapping[FieldPath, str], now: str) -> None:
    meta = obj["metadata"]
    if applied is None:
        applied = changed_fields(_owned_view(current, rtype, manager),
                                 _owned_view(obj, rtype, manager))
    entries = list(meta.get("managedFields") or ())
    if taken:
        entries = without_conflicts(entries, taken)
    managed = record(entries, manager=manager, fields=applied,
                     api_version=obj["apiVersion"], now=now)
    if managed:
        meta["managedFields"] = managed
    else:
        meta.pop("managedFields", None)


def admitted(rtype: ResourceType, body: Obj, version: str, current: Obj | None
              ) -> Obj:
    """The body as the server stores it: a custom resource pruned and defaulted by its
    schema (a 422 for invalid fields), a built-in one with the server's defaults."""
    if rtype.custom:
        processed, causes = rtype.process(body, version, current)
        if rtype.scale_replicas_path:
            causes += scale_causes(processed, rtype.scale_replicas_path)
        if causes:
            raise invalid_fields(rtype.kind, rtype.group, _body_name(body), causes)
        return processed
    if rtype.defaulter is None:
        return body
    copied: Obj = copy_document(body)
    rtype.defaulter(copied, current)
    return copied


def check_name(rtype: ResourceType, name: str) -> None:
    causes = name_causes(name, rtype.name_rule)
    if causes:
        raise invalid_fields(rtype.kind, rtype.group, name, causes)


def validate(rtype: ResourceType, obj: Obj, current: Obj | None) -> None:
    if rtype.pod_selector:
        causes = pod_selector_causes(obj, current)
        if causes:
            raise invalid_fields(rtype.kind, rtype.group, obj["metadata"]["name"], causes)
