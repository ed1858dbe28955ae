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

``release`` drops the held containers no cached object uses any more (the lifecycle calls it
when the daemon goes idle, before the full collection).
"""

from __future__ import annotations

import sys
from typing import Any

import orjson

JsonObject = dict[str, Any]
Container = dict[str, Any] | list[Any]

# Top-level fields looked into but not held themselves: unique to each object (its uid and
# resourceVersion), holding them would cost a table entry and share nothing.
_LOOKED_INTO_ONLY = frozenset({"metadata"})


class SharedParts:
    """The containers held once, by the hash of their JSON."""

    def __init__(self) -> None:
        self._held: dict[int, Container] = {}

    def __len__(self) -> int:
        return len(self._held)

    def share(self, obj: JsonObject) -> JsonObject:
        """``obj`` with its parts equal to held ones replaced by them (in place: it is a new
        object, not cached yet); its other parts are held from now on."""
        stack: list[Container] = []
        for key, value in obj.items():
            if isinstance(value, dict | list):
                if key in _LOOKED_INTO_ONLY:
                    stack.append(value)
                else:
                    obj[key] = self._shared(value, stack)
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for key, value in node.items():
                    if isinstance(value, dict | list):
                        node[key] = self._shared(value, stack)
            else:
                for index, value in enumerate(node):
                    if isinstance(value, dict | list):
                        node[index] = self._shared(value, stack)
        return obj

    def _shared(self, part: Container, unseen: list[Container]) -> Container:
        """The held container equal to ``part``; else ``part``, held from now on and added to
        ``unseen`` (its own parts are shared next)."""
        try:
            data = orjson.dumps(part)
        except TypeError:  # not JSON (nothing parsed from the API server is): left alone
            return part
        digest = hash(data)
        held = self._held.get(digest)
        if held is None:
            self._held[digest] = part
            unseen.append(part)
            return part
        if held is part or orjson.dumps(held) == data:
            return held
        unseen.append(part)  # another JSON with the same hash: kept as it is
        return part

    def release(self) -> int:
        """Stop holding the containers nothing else uses (a container a released one held is
        released in the same call); how many were released."""
        held = self._held
        released = 0
        while True:
            # the table's reference plus getrefcount's argument: nobody else uses it
            unused = [digest for digest in held if sys.getrefcount(held[digest]) <= 2]
            if not unused:
                return released
            for digest in unused:
                del held[digest]
            released += len(unused)
