"""Hypothesis strategies for what users write: a valid document (a Rollout, an AnalysisTemplate,
a configuration) with one to three of its fields replaced by arbitrary JSON, or added where
shiftd reads a field, and the settings every fuzz test runs under.

The CI form is bounded and reproducible: derandomized (a fixed seed), no example database, a
few examples. ``SHIFTD_FUZZ_EXAMPLES=N`` runs N examples per test instead (the long form), and
``SHIFTD_FUZZ_SEED=S`` draws another fixed set.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

Path = tuple[str | int, ...]
EXAMPLES_ENV = "SHIFTD_FUZZ_EXAMPLES"
SEED_ENV = "SHIFTD_FUZZ_SEED"

# Values users (and tools) write by mistake: wrong types, out-of-range numbers, almost-valid
# durations, percentages and timestamps.
TRICKY_STRINGS = ("10s", "1h", "5x", "50%", "-1%", "101%", "0%", "x%", "", " ", "0", "abc",
                  "1e400", "2026-01-01T00:00:00Z", "not-a-time", "Stable", "Latest", "nan")
KEYS = ("name", "duration", "weight", "replicas", "setWeight", "pause", "templateName",
        "matchTrafficWeight", "labels", "annotations", "args", "value", "templates",
        "valueFrom", "fieldRef", "fieldPath", "routes", "x")
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
    st.sampled_from(TRICKY_STRINGS))
JSON_VALUES = st.recursive(
    SCALARS, lambda children: st.one_of(st.lists(children, max_size=3),
                                        st.dictionaries(st.sampled_from(KEYS), children,
                                                        max_size=3)),
    max_leaves=6)


_CANARY = ("spec", "strategy", "canary")
# Fields shiftd reads that the seeds' Rollouts leave out: a mutation may add them.
ROLLOUT_EXTRA_FIELDS: tuple[Path, ...] = (
    ("spec", "restartAt"), ("spec", "paused"), ("spec", "minReadySeconds"),
    ("spec", "progressDeadlineSeconds"), ("spec", "progressDeadlineAbort"),
    ("spec", "workloadRef"), (*_CANARY, "maxSurge"), (*_CANARY, "maxUnavailable"),
    (*_CANARY, "canaryMetadata"), (*_CANARY, "stableMetadata"),
    (*_CANARY, "dynamicStableScale"), (*_CANARY, "scaleDownDelaySeconds"),
    (*_CANARY, "abortScaleDownDelaySeconds"), (*_CANARY, "minPodsPerReplicaSet"),
    (*_CANARY, "analysis"), (*_CANARY, "steps", 0, "pause"),
    (*_CANARY, "steps", 0, "setCanaryScale"), (*_CANARY, "steps", 1, "analysis"),
    (*_CANARY, "trafficRouting", "istio", "destinationRule"),
    (*_CANARY, "trafficRouting", "istio", "virtualServices"),
)


def examples(default: int) -> int:
    """How many examples a fuzz test runs: ``default`` in CI, $SHIFTD_FUZZ_EXAMPLES if set."""
    return int(os.environ.get(EXAMPLES_ENV) or default)


def fuzz_settings(default: int, *, phases: tuple[Phase, ...] = tuple(Phase)
                  ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The settings of every fuzz test: fixed examples (or $SHIFTD_FUZZ_SEED's), no database,
    no deadline (the machine is shared)."""
    chosen = os.environ.get(SEED_ENV)
    configured = settings(max_examples=examples(default), derandomize=chosen is None,
                          database=None, deadline=None, phases=phases,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.data_too_large,
                                                 HealthCheck.filter_too_much])

    def apply(test: Callable[..., Any]) -> Callable[..., Any]:
        return seed(int(chosen))(configured(test)) if chosen else configured(test)

    return apply


def paths(node: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every path into a JSON document (the root included)."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*prefix, index))


@dataclass(frozen=True)
class Mutation:
    """Fields of a document replaced: ``(path, value)`` pairs, applied in order."""

    changes: tuple[tuple[Path, Any], ...]

    def applied(self, document: dict[str, Any]) -> dict[str, Any]:
        result = copy.deepcopy(document)
        for path, value in self.changes:
            node: Any = result
            try:
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = copy.deepcopy(value)
            except (KeyError, IndexError, TypeError):
                continue  # an earlier change removed the way there
        return result

    def describe(self) -> str:
        return "; ".join(f"{'.'.join(map(str, path))} = {value!r}"
                         for path, value in self.changes)


def mutations(document: dict[str, Any], *, under: Path = (),
              extra_fields: tuple[Path, ...] = ()) -> st.SearchStrategy[Mutation]:
    """One to three fields of ``document`` at or below ``under`` (or among ``extra_fields``,
    which it may lack) replaced by arbitrary JSON."""
    node: Any = document
    for key in under:
        node = node[key]
    targets = sorted({(*under, *path) for path in paths(node) if path} | set(extra_fields),
                     key=repr)
    change = st.tuples(st.sampled_from(targets), JSON_VALUES)
    return st.lists(change, min_size=1, max_size=3).map(lambda c: Mutation(tuple(c)))


def drawn(strategy: st.SearchStrategy[Any], *, default: int) -> list[Any]:
    """A fixed list of values from ``strategy`` (as many as the fuzz settings say), for a test
    that needs a whole batch at once (one emulator for all of them)."""
    found: list[Any] = []

    @fuzz_settings(default, phases=(Phase.generate,))
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found
