"""Field ownership: ``metadata.managedFields`` and server-side apply's conflicts.

Every write records who set which fields, as a real server's field manager does: the manager is
the ``fieldManager`` query parameter or the program name in the User-Agent; a create, update or
patch is an ``Update`` that owns the fields it changed (taking them from other managers); a
server-side apply owns exactly the fields of its configuration, and a field another manager
owns with a different value is a 409 conflict unless ``force=true`` takes it over. Field sets
are FieldsV1 trees: ``f:<name>`` for a field, ``k:{...}`` for an item of a list keyed by merge
keys, ``v:<json>`` for a member of a set, ``.`` for a map or list item that is itself owned.
Entries are ordered as the server orders them (operation, time, manager).

What it knows of the built-in kinds' structure: the keyed lists (containers by name, ports by
port and protocol, ...), the maps that merge key by key (labels, annotations, ...) and the
atomic fields (label selectors). Lists of custom resources are atomic. The daemon never
server-side applies; these entries matter for their shape and size (what a watch carries).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from shiftd.sim.errors import ApiStatusError

Obj = dict[str, Any]
Fields = dict[str, Any]

# Keyed lists of built-in kinds: field name -> merge keys (with the defaults of missing keys).
_LIST_KEYS: Mapping[str, tuple[tuple[str, Any], ...]] = {
    "containers": (("name", None),),
    "initContainers": (("name", None),),
    "env": (("name", None),),
    "volumes": (("name", None),),
    "volumeMounts": (("mountPath", None),),
    "imagePullSecrets": (("name", None),),
    "ownerReferences": (("uid", None),),
    "conditions": (("type", None),),
}
_PORT_KEYS = {"containers": (("containerPort", None), ("protocol", "TCP")),
              "spec": (("port", None), ("protocol", "TCP"))}
_SET_LISTS = frozenset({"finalizers"})
_GRANULAR_MAPS = frozenset({"labels", "annotations", "nodeSelector", "data", "stringData",
                            "binaryData", "matchLabels"})
_ATOMIC = frozenset({"selector", "resources", "securityContext"})
_UNOWNED_META = frozenset({"name", "namespace", "uid", "resourceVersion", "generation",
                           "creationTimestamp", "managedFields", "selfLink",
                           "deletionTimestamp", "deletionGracePeriodSeconds", "generateName"})


@dataclass(frozen=True, slots=True)
class Manager:
    """Who writes, and how: ``Update`` (create, update, patch) or ``Apply``."""

    name: str
    operation: str = "Update"
    subresource: str = ""


def manager_name(field_manager: str | None, user_agent: str | None) -> str:
    """The fieldManager parameter, else the User-Agent's program name (before the first /)."""
    if field_manager:
        return field_manager
    return (user_agent or "").split("/", 1)[0][:128]


def _list_keys(parent: str, name: str) -> tuple[tuple[str, Any], ...] | None:
    if name == "ports":
        return _PORT_KEYS.get(parent)
    return _LIST_KEYS.get(name)


def _item_key(item: Any, keys: tuple[tuple[str, Any], ...]) -> str | None:
    if not isinstance(item, dict):
        return None
    values = {}
    for key, default in keys:
        value = item.get(key, default)
        if value is None:
            return None
        values[key] = value
    return "k:" + orjson.dumps(values, option=orjson.OPT_SORT_KEYS).decode()


def _is_atomic(name: str, value: Any) -> bool:
    return name in _ATOMIC or not isinstance(value, dict) or not value


def _entries(parent: str, name: str, value: Any) -> list[tuple[str, Any, str]] | None:
    """The children of a list as (path element, item, its member name); None when atomic."""
    if name in _SET_LISTS:
        return [("v:" + orjson.dumps(item).decode(), None, "") for item in value]
    keys = _list_keys(parent, name)
    if keys is None:
        return None
    entries = []
    for item in value:
        key = _item_key(item, keys)
        if key is None:
            return None
        entries.append((key, item, name))
    return entries


def applied_fields(config: Any, *, parent: str = "") -> Fields:
    """The fields an apply configuration sets: its leaves and its list items."""
    fields: Fields = {}
    if not isinstance(config, dict):
        return fields
    for name, value in config.items():
        if parent == "" and name in ("apiVersion", "kind", "status"):
            continue
        if parent == "metadata" and name in _UNOWNED_META:
            continue
        fields[f"f:{name}"] = _applied_value(parent, name, value)
    return {key: value for key, value in fields.items() if value is not None}


def _applied_value(parent: str, name: str, value: Any) -> Fields | None:
    if isinstance(value, list):
        entries = _entries(parent, name, value)
        if entries is None:
            return {}
        return {key: ({".": {}, **applied_fields(item, parent=member)} if item is not None
                      else {}) for key, item, member in entries}
    if _is_atomic(name, value):
        return {}
    nested = applied_fields(value, parent=name)
    return nested if nested or name != "metadata" else None


def _added(parent: str, name: str, value: Any) -> Fields:
    """Everything under a field that did not exist before (maps and items own themselves)."""
    if isinstance(value, list):
        entries = _entries(parent, name, value)
        if entries is None:
            return {}
        return {key: ({".": {}, **_added_children(item, member)} if item is not None else {})
                for key, item, member in entries}
    if _is_atomic(name, value):
        return {}
    children = _added_children(value, name)
    return {".": {}, **children} if name in _GRANULAR_MAPS else children


def _added_children(value: Any, parent: str) -> Fields:
    if not isinstance(value, dict):
        return {}
    return {f"f:{name}": _added(parent, name, child) for name, child in value.items()}


def changed_fields(old: Any, new: Any, *, parent: str = "") -> Fields:
    """The fields an update set: those added or changed between ``old`` and ``new``."""
    fields: Fields = {}
    if not isinstance(new, dict):
        return fields
    old_map = old if isinstance(old, dict) else {}
    for name, value in new.items():
        if parent == "" and name in ("apiVersion", "kind"):
            continue
        if parent == "metadata" and name in _UNOWNED_META:
            continue
        before = old_map.get(name, _MISSING)
        if before == value:
            continue
        if before is _MISSING:
            fields[f"f:{name}"] = _added(parent, name, value)
        elif isinstance(value, dict) and isinstance(before, dict) and not _is_atomic(name,
                                                                                     value):
            nested = changed_fields(before, value, parent=name)
            if nested:
                fields[f"f:{name}"] = nested
        elif isinstance(value, list) and isinstance(before, list):
            fields[f"f:{name}"] = _changed_list(parent, name, before, value)
        else:
            fields[f"f:{name}"] = {}
    return fields


def _changed_list(parent: str, name: str, before: list[Any], after: list[Any]) -> Fields:
    old_entries = _entries(parent, name, before)
    entries = _entries(parent, name, after)
    if entries is None or old_entries is None:
        return {}
    previous = {key: item for key, item, _ in old_entries}
    changed: Fields = {}
    for key, item, member in entries:
        if key not in previous:
            changed[key] = {".": {}, **_added_children(item, member)} if item is not None else {}
        elif previous[key] != item:
            changed[key] = changed_fields(previous[key], item, parent=member)
    return changed


class _Missing:
    pass


_MISSING = _Missing()


# --- field sets as paths -------------------------------------------------------------------

Path = tuple[str, ...]


def field_paths(fields: Fields, prefix: Path = ()) -> set[Path]:
    """The owned paths of a FieldsV1 tree (a node is owned when it is a leaf or has ``.``)."""
    paths: set[Path] = set()
    for key, sub in fields.items():
        if key == ".":
            paths.add(prefix)
        elif not sub:
            paths.add((*prefix, key))
        else:
            paths |= field_paths(sub, (*prefix, key))
    return paths


def _leaf_paths(fields: Fields, prefix: Path = ()) -> set[Path]:
    """The owned values (leaves); list items and maps owned with their children are not
    compared themselves, their fields are."""
    paths: set[Path] = set()
    for key, sub in fields.items():
        if key != "." and not sub:
            paths.add((*prefix, key))
        elif sub:
            paths |= _leaf_paths(sub, (*prefix, key))
    return paths


def fields_tree(paths: set[Path]) -> Fields:
    """The FieldsV1 tree of a set of owned paths."""
    tree: Fields = {}
    for path in paths:
        node = tree
        for element in path:
            node = node.setdefault(element, {})

    def mark(node: Fields, prefix: Path) -> Fields:
        marked: Fields = {}
        for key, sub in sorted(node.items()):
            path = (*prefix, key)
            children = mark(sub, path) if sub else {}
            if children and path in paths:
                children = {".": {}, **children}
            marked[key] = children
        return marked

    return mark(tree, ())


def _step(value: Any, element: str) -> Any:
    if element.startswith("f:"):
        return value.get(element[2:], _MISSING) if isinstance(value, dict) else _MISSING
    if element.startswith("k:") and isinstance(value, list):
        wanted = orjson.loads(element[2:])
        for item in value:
            if isinstance(item, dict) and all(
                    item.get(k, "TCP" if k == "protocol" else None) == v
                    for k, v in wanted.items()):
                return item
    if element.startswith("v:") and isinstance(value, list):
        member = orjson.loads(element[2:])
        return member if member in value else _MISSING
    return _MISSING


def value_at(obj: Any, path: Path) -> Any:
    for element in path:
        obj = _step(obj, element)
        if obj is _MISSING:
            return obj
    return obj


def path_string(path: Path) -> str:
    """A path as the server prints it in a conflict: ``.spec.ports[port=80,protocol="TCP"]``."""
    text = ""
    for element in path:
        if element.startswith("f:"):
            text += f".{element[2:]}"
        elif element.startswith("k:"):
            pairs = orjson.loads(element[2:])
            text += "[" + ",".join(f"{k}={orjson.dumps(v).decode()}"
                                   for k, v in pairs.items()) + "]"
        else:
            text += f"[={element[2:]}]"
    return text


# --- the managedFields list ------------------------------------------------------------------

def _identity(entry: Mapping[str, Any]) -> tuple[str, ...]:
    operation = entry.get("operation", "")
    version = entry.get("apiVersion", "") if operation == "Update" else ""
    return (entry.get("manager", ""), operation, version, entry.get("subresource", ""))


def apply_conflicts(entries: list[Obj], manager: Manager, applied: Fields, config: Obj,
                    live: Obj) -> dict[Path, str]:
    """Paths the configuration sets to another value than a field another manager owns."""
    conflicts: dict[Path, str] = {}
    for path in _leaf_paths(applied):
        if value_at(config, path) == value_at(live, path):
            continue
        for entry in entries:
            if entry.get("manager") == manager.name:
                continue
            if path in field_paths(entry.get("fieldsV1") or {}):
                conflicts.setdefault(path, entry.get("manager", ""))
    return conflicts


def conflict_error(conflicts: Mapping[Path, str]) -> ApiStatusError:
    """The 409 of a server-side apply that conflicts, worded as the server words it."""
    causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{who}"',
               "field": path_string(path)} for path, who in conflicts.items()]
    if len(conflicts) == 1:
        (path, who), = conflicts.items()
        message = f'Apply failed with 1 conflict: conflict with "{who}": {path_string(path)}'
    else:
        lines = []
        for who in sorted(set(conflicts.values())):
            lines.append(f'conflicts with "{who}":')
            lines += [f"- {path_string(p)}" for p, w in conflicts.items() if w == who]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiStatusError(409, message, reason="Conflict", details={"causes": causes})


def _owned(node: Fields) -> bool:
    return not node or "." in node


def _union(a: Fields, b: Fields) -> Fields:
    """The fields of both trees; walks only ``b`` (a write's fields are few)."""
    if not b:
        return a if _owned(a) else {".": {}, **a}
    merged = {key: value for key, value in a.items()}
    if "." in b and merged:
        merged["."] = {}
    for key, sub in b.items():
        if key != ".":
            merged[key] = _union(merged[key], sub) if key in merged else sub
    return merged


def _minus(a: Fields, b: Fields) -> Fields | None:
    """The fields of ``a`` not in ``b`` (None when nothing is left); walks only ``b``."""
    owned = _owned(a) and not _owned(b)
    children = {key: value for key, value in a.items() if key != "."}
    for key, sub in b.items():
        if key != "." and key in children:
            rest = _minus(children[key], sub)
            if rest is None:
                del children[key]
            else:
                children[key] = rest
    if children:
        return {".": {}, **children} if owned else children
    return {} if owned else None


def record(entries: list[Obj], *, manager: Manager, fields: Fields, api_version: str,
           now: str) -> list[Obj]:
    """The managedFields after ``manager`` wrote ``fields``: the writer's entry replaced (an
    apply) or grown (an update), the written fields taken from every other manager (an
    update; an apply shares them)."""
    kept: list[Obj] = []
    own: Fields | None = None
    identity = _identity({"manager": manager.name, "operation": manager.operation,
                          "apiVersion": api_version, "subresource": manager.subresource})
    for entry in entries:
        if _identity(entry) == identity:
            own = entry.get("fieldsV1") if manager.operation == "Update" else None
            continue
        if manager.operation == "Update" and fields:
            rest = _minus(entry.get("fieldsV1") or {}, fields)
            if rest is None:
                continue
            kept.append({**entry, "fieldsV1": rest})
        else:
            kept.append(entry)
    mine = _union(own, fields) if own else fields
    if mine:
        entry = {"manager": manager.name, "operation": manager.operation,
                 "apiVersion": api_version, "time": now, "fieldsType": "FieldsV1",
                 "fieldsV1": mine}
        if manager.subresource:
            entry["subresource"] = manager.subresource
        kept.append(entry)
    kept.sort(key=lambda e: (e.get("operation", ""), e.get("time", ""), e.get("manager", "")))
    return kept


def without_conflicts(entries: list[Obj], conflicts: Mapping[Path, str]) -> list[Obj]:
    """Entries with the paths a forced apply takes over removed."""
    taken = set(conflicts)
    result = []
    for entry in entries:
        paths = field_paths(entry.get("fieldsV1") or {}) - taken
        if paths:
            result.append({**entry, "fieldsV1": fields_tree(paths)})
    return result
