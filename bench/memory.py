"""Where the daemon's memory goes: the benchmark's ``--memory-report`` (see BENCHMARKS.md).

Three views, written as text once the run is over:

* ``tracemalloc``: the live allocations made since the daemon started (tracing starts just
  before it), grouped by the file and line that allocated them, and by file;
* holders: the deep size of what each part of the daemon keeps (each informer's cache by kind,
  the Rollout controller's per-Rollout state, the reference index, the timers, telemetry, the
  Event recorder), each object counted once, for the first holder that reaches it;
* object types: every object the garbage collector tracks, by type, with its shallow size.

Deep sizes are ``sys.getsizeof`` summed over ``gc.get_referents`` (modules, classes and
functions are not followed): an estimate of the Python heap, not of RSS.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import tempfile
import tracemalloc
import types
from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson

_OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
           types.MethodType, types.CodeType, types.FrameType)


def deep_size(roots: Iterable[Any], seen: set[int],
              by_type: Counter[str] | None = None) -> int:
    """Bytes of ``roots`` and everything they reach that ``seen`` does not hold yet (added to
    ``by_type`` by the type of each object)."""
    total = 0
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _OPAQUE):
            continue
        seen.add(id(obj))
        size = sys.getsizeof(obj)
        total += size
        if by_type is not None:
            by_type[type(obj).__qualname__] += size
        stack.extend(gc.get_referents(obj))
    return total


def holders(daemon: Any, by_type: Counter[str]) -> list[tuple[str, int, int]]:
    """(holder, objects held, deep bytes) for each part of the daemon that keeps state; the
    informer caches' bytes by type go to ``by_type``."""
    parts = daemon.parts
    caches = parts.caches
    seen: set[int] = set()
    rows: list[tuple[str, int, int]] = []
    for plural, registration in caches._kinds.items():
        cache = registration.informer._cache
        count = sum(len(bucket) for bucket in cache.values())
        rows.append((f"informer cache: {plural}", count, deep_size([cache], seen, by_type)))
        if registration.owners is not None:
            rows.append((f"owner index: {plural}", len(registration.owners.owner_of),
                         deep_size([registration.owners], seen)))
    shared = getattr(caches, "_shared", None)
    if shared is not None:
        rows.append(("shared parts (their table; the parts count with the caches)",
                     len(shared), deep_size([shared._held], seen)))
    rows.append(("reference index", len(caches._references),
                 deep_size([caches._references, caches._dependents], seen)))
    rollouts = parts.engine._controllers.get("Rollout")
    if rollouts is not None:
        for name, value in sorted(vars(rollouts).items()):
            if isinstance(value, dict) and name.startswith("_") and value:
                rows.append((f"Rollout controller: {name}", len(value),
                             deep_size([value], seen)))
    timers = parts.engine.timers
    rows.append(("engine timers", len(timers._due),
                 deep_size([timers._heap, timers._due, parts.engine._failures], seen)))
    registry = getattr(parts.telemetry, "registry", None)
    rows.append(("telemetry (prometheus_client registry)", 0,
                 deep_size([registry] if registry is not None else [], seen)))
    return rows


def string_copies(daemon: Any) -> tuple[int, int, int, list[str]]:
    """(strings, their bytes, bytes if equal strings were one object) in the informer caches,
    and the strings held in more than one copy that waste the most bytes (a line each: bytes
    wasted, copies, the string cut to 60 characters)."""
    seen: set[int] = set()
    total = 0
    distinct: dict[str, int] = {}
    copies: Counter[str] = Counter()
    stack: list[Any] = [registration.informer._cache
                        for registration in daemon.parts.caches._kinds.values()]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            total += sys.getsizeof(obj)
            distinct[obj] = sys.getsizeof(obj)
            copies[obj] += 1
        elif isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple):
            stack.extend(obj)
    wasted = sorted(((copies[text] - 1) * size, copies[text], text)
                    for text, size in distinct.items() if copies[text] > 1)[::-1][:12]
    lines = [f"  {bytes_:>9} B {count:>7}x  {text[:60]!r}" for bytes_, count, text in wasted]
    return len(seen), total, sum(distinct.values()), lines


def samples(daemon: Any) -> list[str]:
    """For each non-empty informer cache, one cached object: its deep size by path (two
    levels down) and its JSON, to see what a cached object still holds."""
    lines: list[str] = []
    for plural, registration in daemon.parts.caches._kinds.items():
        cache = registration.informer._cache
        obj = next((o for bucket in cache.values() for o in bucket.values()), None)
        if obj is None:
            continue
        lines.append(f"  {plural}: {deep_size([obj], set())} bytes")
        for key, value in obj.items():
            lines.append(f"    {key}: {deep_size([value], set())}")
            if isinstance(value, dict):
                for inner, part in value.items():
                    lines.append(f"      {key}.{inner}: {deep_size([part], set())}")
        lines.append("    " + orjson.dumps(obj).decode())
    return lines


def allocator() -> list[str]:
    """pymalloc's arenas (``sys._debugmallocstats``: blocks in use, free blocks and pools
    inside arenas that cannot be returned) and glibc's heap (``mallinfo2``: in use, free),
    to tell live objects from memory the allocators keep."""
    wanted = ("# arenas allocated current", "# bytes in allocated blocks",
              "# bytes in available blocks", "unused pools", "Total")
    lines: list[str] = []
    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode(errors="replace")
    start = text.find("# arenas allocated total")
    for line in text[start:].splitlines()[:14] if start >= 0 else []:
        if line.startswith(wanted):
            lines.append("  pymalloc " + " ".join(line.split()))
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return lines

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    mallinfo2.restype = MallInfo2
    info = mallinfo2()
    lines.append(f"  glibc heap {info.arena / 2**20:.1f} MiB (in use "
                 f"{info.uordblks / 2**20:.1f}, free {info.fordblks / 2**20:.1f}), "
                 f"mmapped {info.hblkhd / 2**20:.1f} MiB in {info.hblks} blocks")
    return lines


def container_sharing(daemon: Any) -> list[str]:
    """What holding equal containers (dicts, lists: compared as JSON, key order included) of
    the cached objects once would save, by the path where the copies are (top-down: a copy
    of a shared container is not looked into)."""
    first: dict[bytes, Any] = {}
    saved: Counter[str] = Counter()
    copies: Counter[str] = Counter()
    stack: list[tuple[str, Any]] = []
    for plural, registration in daemon.parts.caches._kinds.items():
        for bucket in registration.informer._cache.values():
            for obj in bucket.values():
                stack.extend((f"{plural}.{key}", value) for key, value in obj.items())
    while stack:
        path, node = stack.pop()
        if not isinstance(node, dict | list):
            continue
        key = orjson.dumps(node)
        found = first.get(key)
        if found is not None:
            if found is not node:
                saved[path] += deep_size([node], set())
                copies[path] += 1
            continue
        first[key] = node
        items = node.items() if isinstance(node, dict) else ((None, v) for v in node)
        stack.extend((path if key is None else f"{path}.{key}", value)
                     for key, value in items)
    total = sum(saved.values())
    lines = [f"  {total / 2**20:.2f} MiB in {sum(copies.values())} copies; "
             f"{len(first)} distinct containers"]
    for path, size in saved.most_common(25):
        lines.append(f"  {size / 2**20:8.2f} MiB {copies[path]:>8}  {path}")
    return lines


def type_breakdown(top: int = 20) -> list[tuple[str, int, int]]:
    """(type, count, shallow bytes) of the objects the collector tracks, largest first (the
    daemon ``gc.freeze()``s when idle, so this unfreezes first; dicts holding only atoms and
    strings are not tracked, so they count only inside the holders above)."""
    gc.unfreeze()
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for obj in gc.get_objects():
        name = type(obj).__qualname__
        counts[name] += 1
        sizes[name] += sys.getsizeof(obj)
    return [(name, counts[name], size) for name, size in sizes.most_common(top)]


def report(daemon: Any, snapshot: tracemalloc.Snapshot | None, *, rollouts: int) -> str:
    """The three views as text (``snapshot`` may be ``None``: tracing was off)."""
    lines: list[str] = []
    if snapshot is not None:
        snapshot = snapshot.filter_traces([
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
        ])
        total = sum(stat.size for stat in snapshot.statistics("filename"))
        lines += [f"tracemalloc: {total / 2**20:.1f} MiB live, "
                  f"{total / rollouts / 1024:.1f} KiB per Rollout", "", "by line:"]
        for stat in snapshot.statistics("lineno")[:30]:
            frame = stat.traceback[0]
            lines.append(f"  {stat.size / 2**20:8.2f} MiB {stat.count:>9} blocks  "
                         f"{_short(frame.filename)}:{frame.lineno}")
        lines += ["", "by file:"]
        for stat in snapshot.statistics("filename")[:15]:
            lines.append(f"  {stat.size / 2**20:8.2f} MiB  "
                         f"{_short(stat.traceback[0].filename)}")
    lines += ["", "holders (deep size, each object counted once):"]
    cached_types: Counter[str] = Counter()
    for name, count, size in holders(daemon, cached_types):
        per = f"{size / rollouts / 1024:6.2f} KiB/Rollout"
        lines.append(f"  {size / 2**20:8.2f} MiB {per}  {count:>7} items  {name}")
    lines += ["", "informer caches by object type:"]
    for name, size in cached_types.most_common(8):
        lines.append(f"  {size / 2**20:8.2f} MiB {size / rollouts / 1024:6.2f} KiB/Rollout  "
                     f"{name}")
    objects, strings, shared, wasted = string_copies(daemon)
    lines += ["", f"strings in the caches: {strings / 2**20:.2f} MiB; "
                  f"{shared / 2**20:.2f} MiB if equal strings were shared "
                  f"({objects} objects walked); held in several copies, most bytes first:"]
    lines += wasted
    shared = getattr(daemon.parts.caches, "_shared", None)
    if shared is not None:
        users = Counter(min(sys.getrefcount(shared._held[digest]) - 2, 3)
                        for digest in shared._held)
        lines += ["", "shared parts by users (1 = held for nothing so far): " + ", ".join(
            f"{count} used by {'3+' if n == 3 else n}" for n, count in sorted(users.items()))]
    lines += ["", "equal containers in the caches (what holding each once would save):"]
    lines += container_sharing(daemon)
    lines += ["", "allocators:"]
    lines += allocator()
    lines += ["", "one cached object per kind (deep bytes by path; shared parts counted):"]
    lines += samples(daemon)
    lines += ["", "object types (gc-tracked, shallow size):"]
    for name, count, size in type_breakdown():
        lines.append(f"  {size / 2**20:8.2f} MiB {count:>9}  {name}")
    return "\n".join(lines)


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/shiftd/", "/lib/python3"):
        if marker in filename:
            return filename[filename.index(marker) + 1:]
    return filename
