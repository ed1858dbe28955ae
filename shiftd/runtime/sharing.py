"""Equal parts of cached objects held once, whatever object they belong to.

Cached objects repeat themselves: a ReplicaSet's labels, its selector's ``matchLabels`` and
its template's labels are equal; the two ReplicaSets of a Rollout carry the same
``ownerReferences``; a Rollout's canary and stable Services the same ports; Rollouts made
from one chart the same steps; a new copy of an object (each status write) most of the old
one's conditions. The informer caches each copy as a fresh tree of dicts and lists, and a
dict costs 64 to 600 bytes whatever it holds: in the benchmark's caches, equal containers were
more than half of the bytes.

``SharedParts.share`` walks a new object from the top and replaces each container (dict or
list, below the object itself) equal to one already held by that one, without looking
inside it; a container seen for the first time is held and looked into. Equality is that of
their JSON (orjson: ``1``, ``1.0`` and ``true`` differ, and so does key order, so sharing
never changes what a hash or a serialisation of the object gives). Sharing is safe because
cached objects are never changed in place (``shiftd.kube.informer.share_unchanged_spec``
relies on it too): whoever changes one works on a copy.

A new copy of a cached object (every write's answer and watch event) is shared against
the copy it replaces first: a part exactly equal to the previous copy's part at the same
place is taken from it (already shared and interned), so only what the write changed is
interned, hashed and held.

``release`` drops the held containers that are not shared (the lifecycle calls it when the
daemon goes idle, before the full collection): those no cached object uses any more, and
those only one uses (their table entry would cost more than they are likely to save), but
for ``ownerReferences`` (the next object the same owner makes carries them too).
"""

from __future__ import annotations

import sys
from typing import Any, cast

import orjson

from shiftd.kube.informer import intern_short, share_unchanged_spec

JsonObject = dict[str, Any]
Container = dict[str, Any] | list[Any]

# Top-level fields looked into but not held themselves: unique to each object (its uid and
# resourceVersion), holding them would cost a table entry and share nothing.
_LOOKED_INTO_ONLY = frozenset({"metadata"})
# getrefcount of a held part used by one container: the table's reference, its user's and
# getrefcount's argument
_USED_ONCE = 3
_NOTHING: JsonObject = {}  # the previous copy of a part that had none (never changed)


class SharedParts:
    """The containers held once, by the hash of their JSON."""

    def __init__(self) -> None:
        self._held: dict[int, Container] = {}
        # held ownerReferences: kept while one object uses them (the next object its owner
        # makes, a ReplicaSet or an AnalysisRun, carries the same)
        self._owners: set[int] = set()

    def __len__(self) -> int:
        return len(self._held)

    def share(self, obj: JsonObject, previous: JsonObject | None = None) -> JsonObject:
        """``obj`` with its parts equal to held ones replaced by them (in place: it is a new
        object, not cached yet); its other parts are held from now on, and its strings up to
        64 characters interned (``shiftd.kube.informer.share_strings``).

        ``previous`` is the copy ``obj`` replaces (shared before): its spec is taken when
        the generation is unchanged (``share_unchanged_spec``), and each part and string
        equal to the one at the same place in ``previous`` (exactly: as JSON) is taken
        from it, without the table and without looking inside. A status write changes a
        few fields; only those are interned, hashed and held."""
        if previous is not None and previous is not obj:
            share_unchanged_spec(obj, previous)
        else:
            previous = None
        stack: list[tuple[Container, Any]] = []
        metadata = obj.get("metadata")
        if isinstance(metadata, dict):
            owners = metadata.get("ownerReferences")
            if isinstance(owners, list) and owners:
                metadata["ownerReferences"] = self._shared(owners, None, stack, lasting=True)
        self._look_into(obj, previous, stack, top=True)
        while stack:
            node, before = stack.pop()
            self._look_into(node, before, stack)
        return obj

    def _look_into(self, node: Container, before: Any, unseen: list[tuple[Container, Any]],
                   *, top: bool = False) -> None:
        """Share the parts of ``node`` (paired with ``before``, its previous copy, or None),
        intern its strings; the parts seen for the first time go to ``unseen``. (Written
        out for dicts and lists, with strings inline: this runs for every watch event.)"""
        if isinstance(node, dict):
            previous = before if isinstance(before, dict) else _NOTHING
            for key, value in node.items():
                old = previous.get(key)
                if value is old:
                    continue
                if value.__class__ is str:
                    node[key] = old if old.__class__ is str and old == value \
                        else intern_short(value)
                elif isinstance(value, dict | list):
                    if top and key in _LOOKED_INTO_ONLY:
                        unseen.append((value, old))
                    else:
                        node[key] = self._shared(value, old, unseen)
            return
        items = before if isinstance(before, list) else []
        known = len(items)
        for index, value in enumerate(node):
            old = items[index] if index < known else None
            if value is old:
                continue
            if value.__class__ is str:
                node[index] = old if old.__class__ is str and old == value \
                    else intern_short(value)
            elif isinstance(value, dict | list):
                node[index] = self._shared(value, old, unseen)

    def _shared(self, part: Container, before: Any, unseen: list[tuple[Container, Any]], *,
                lasting: bool = False) -> Container:
        """``before`` if it equals ``part`` as JSON, else the held container equal to
        ``part``; else ``part``, held from now on (while used once too if ``lasting``) and
        added to ``unseen`` (its own parts are shared next)."""
        try:
            data = orjson.dumps(part)
        except TypeError:  # not JSON (nothing parsed from the API server is): left alone
            return part
        if before is not None and before == part and orjson.dumps(before) == data:
            return cast(Container, before)
        digest = hash(data)
        held = self._held.get(digest)
        if held is None:
            self._held[digest] = held = part
            unseen.append((part, before))
        elif held is not part and orjson.dumps(held) != data:
            unseen.append((part, before))  # another JSON with the same hash: kept as it is
            return part
        if lasting:
            self._owners.add(digest)
        return held

    def release(self) -> int:
        """Stop holding the containers that are not shared (in use by one container or
        none: a container a released one held is released in the same call); how many
        were released. A container used once is still cached, but holding it costs a table
        entry (about 100 bytes) for as long as nothing equal comes: most parts of a Rollout
        are unique to it (its status, its names), and after a burst most held parts are
        such. Equal parts arriving together (a list, a burst) are shared before this."""
        held = self._held
        before = len(held)
        while True:
            unused = [digest for digest in held
                      if sys.getrefcount(held[digest]) < _USED_ONCE]
            if not unused:
                break
            for digest in unused:
                del held[digest]
        # a dict never gives back the room its deleted entries took: copied when it shrank
        owners = self._owners = {digest for digest in self._owners if digest in held}
        self._held = {digest: held[digest] for digest in held
                      if sys.getrefcount(held[digest]) > _USED_ONCE or digest in owners}
        return before - len(self._held)

