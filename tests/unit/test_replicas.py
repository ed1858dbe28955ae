"""Replica math, row for row with Argo Rollouts' unit tables (utils/replicaset/canary_test.go).

Each Argo row keeps its name. Argo's test Rollout has one step holding both a setWeight and a
setCanaryScale; a shiftd step holds one, so the row's step becomes ``setWeight`` then (if the
row has one) ``setCanaryScale``, and the row looks at the last of them, as Argo's does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from shiftd.decide.rollout.observed import ReplicaSetView
from shiftd.decide.rollout.replicas import (
    RoutedScale,
    RSCounts,
    abort_traffic_weight,
    approximate_weighted_counts,
    basic_canary_counts,
    dynamic_abort_weight,
    resolve_fenceposts,
    traffic_routed_counts,
    traffic_weight_to_replicas,
    with_min_pods,
)
from shiftd.decide.rollout.revisions import Revisions
from shiftd.decide.rollout.targets import (
    at_desired_counts,
    canary_replicas_or_weight,
    replica_targets,
)
from shiftd.model.argo.rollout import (
    CanaryStrategy,
    Rollout,
    SetCanaryScaleStep,
    SetWeightStep,
    Step,
)

# --- building Argo's test Rollout ---------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One row of Argo's TestCalculateReplicaCountsForCanary, in its own columns."""

    replicas: int
    set_weight: int = 0
    max_surge: int | str = 0
    max_unavailable: int | str = 0
    promote_full: bool = False
    stable: tuple[int, int] = (0, 0)  # spec, available
    canary: tuple[int, int] = (0, 0)
    expected: tuple[int, int] = (0, 0)  # canary, stable
    older: tuple[int, int] | None = None
    scale: SetCanaryScaleStep | None = None
    routed: bool = False
    abort_delay: int | None = None  # abortScaleDownDelaySeconds, None: not written
    aborted: bool = False
    min_pods: int | None = None


def argo_rollout(*, replicas: int, steps: tuple[Step, ...], routed: bool,
                 max_surge: int | str = 0, max_unavailable: int | str = 0,
                 abort_delay: int | None = None, min_pods: int | None = None,
                 dynamic: bool = False) -> Rollout:
    """A Rollout built field by field (Argo's rows skip its validation, e.g. both fences 0)."""
    canary = CanaryStrategy(
        canary_service="canary" if routed else None, stable_service="stable" if routed else None,
        router="istio" if routed else None, istio=None, steps=steps, raw_steps=(),
        max_surge=max_surge, max_unavailable=max_unavailable, scale_down_delay_seconds=30,
        abort_scale_down_delay_seconds=30 if abort_delay is None else abort_delay,
        background_analysis=None, dynamic_stable_scale=dynamic, min_pods_per_replica_set=min_pods,
        abort_delay_explicit=abort_delay is not None)
    return Rollout(namespace="default", name="ro", uid="uid", generation=1, replicas=replicas,
                   selector={}, template={}, min_ready_seconds=0, revision_history_limit=10,
                   paused=False, canary=canary, status={}, annotations={})


def rs_view(name: str, spec: int, available: int) -> ReplicaSetView:
    return ReplicaSetView(name=name, pod_hash=name, revision=1, spec_replicas=spec,
                          replicas=spec, ready=available, available=available, template={})


def argo_revisions(*, canary: ReplicaSetView | None, stable: ReplicaSetView | None,
                   older: tuple[ReplicaSetView, ...] = ()) -> Revisions:
    """status.currentPodHash "canary", status.stableRS "stable", as Argo's test Rollout."""
    return Revisions(pod_hash="canary", stable_hash="stable", revision=2, new_rs=canary,
                     stable_rs=stable, older=older, first_stable=False)


def counts_for(row: Row) -> tuple[int, int]:
    steps: tuple[Step, ...] = (SetWeightStep(row.set_weight),)
    if row.scale is not None:
        steps = (*steps, row.scale)
    rollout = argo_rollout(replicas=row.replicas, steps=steps, routed=row.routed,
                           max_surge=row.max_surge, max_unavailable=row.max_unavailable,
                           abort_delay=row.abort_delay, min_pods=row.min_pods)
    older = () if row.older is None else (rs_view("older", *row.older),)
    revisions = argo_revisions(canary=rs_view("canary", *row.canary),
                               stable=rs_view("stable", *row.stable), older=older)
    index = len(steps) if row.promote_full else len(steps) - 1
    targets = replica_targets(rollout, revisions, index=index, aborted=row.aborted)
    return targets.canary_replicas, targets.stable_replicas


def scs(replicas: int | None = None, weight: int | None = None,
        match: bool = False) -> SetCanaryScaleStep:
    return SetCanaryScaleStep(replicas=replicas, weight=weight, match_traffic_weight=match)


# --- TestCalculateReplicaCountsForCanary ----------------------------------------------------------

ARGO_CANARY_ROWS = [
    pytest.param(Row(10, 100, 3, 0, stable=(7, 8), canary=(6, 3), expected=(6, 7)),
                 id="Do not add extra RSs in scaleDownCount when .Spec.Replica < "
                    "AvailableReplicas"),
    pytest.param(Row(10, 20, 2, 0, stable=(10, 10), expected=(2, 10)),
                 id="Use max surge int to scale up canary"),
    pytest.param(Row(10, 20, "20%", 0, stable=(10, 10), expected=(2, 10)),
                 id="Use max surge percentage to scale up canary"),
    pytest.param(Row(10, 20, "20%", 0, stable=(10, 10), canary=(2, 2), expected=(2, 8)),
                 id="Scale down extra stable replicas"),
    pytest.param(Row(10, 30, 2, 0, stable=(10, 10), expected=(2, 10)),
                 id="Do not go past max surge"),
    pytest.param(Row(10, 20, 0, 2, stable=(10, 10), expected=(0, 8)),
                 id="Use max unavailable int to scale down stableRS"),
    pytest.param(Row(10, 20, 0, "20%", stable=(10, 10), expected=(0, 8)),
                 id="Use max surge percentage to scale down stableRS"),
    pytest.param(Row(10, 30, 0, 2, stable=(10, 10), expected=(0, 8)),
                 id="Do not go past max unavailable"),
    pytest.param(Row(10, 50, 2, 1, stable=(10, 10), expected=(2, 9)),
                 id="Use Max Surge and Max Unavailable"),
    pytest.param(Row(10, 0, 1, 1, stable=(10, 10), canary=(1, 1), expected=(0, 10)),
                 id="Scale canaryRS to zero on setWeight of 0%"),
    pytest.param(Row(10, 100, 1, 1, stable=(1, 1), canary=(10, 10), expected=(10, 0)),
                 id="Scale stable to zero on setWeight of 100%"),
    pytest.param(Row(1, 20, 1, 0, stable=(1, 1), expected=(1, 1)),
                 id="Do not scale canaryRS down to zero on non-zero weight"),
    pytest.param(Row(1, 90, 1, 0, stable=(1, 1), expected=(1, 1)),
                 id="Do not scale canaryRS down to zero on non-100 weight"),
    pytest.param(Row(1, 49, 0, 1, stable=(1, 1), expected=(0, 1)),
                 id="Scale canaryRS to zero on <50 weight without surge"),
    pytest.param(Row(1, 51, 0, 1, stable=(1, 1), expected=(0, 0)),
                 id="Scale stableRS down to zero on >=50 weight without surge"),
    pytest.param(Row(1, 51, 0, 1, stable=(0, 0), expected=(1, 0)),
                 id="Scale canaryRS to one on >=50 weight without surge and stable replicas"),
    pytest.param(Row(10, 30, 1, 0, stable=(1, 1), older=(3, 3), expected=(1, 7)),
                 id="Scale up Stable before canaryRS"),
    pytest.param(Row(10, 30, 0, 3, stable=(8, 5), canary=(4, 4), expected=(3, 7)),
                 id="Scale down canaryRS and stable"),
    pytest.param(Row(10, 100, 1, 0, stable=(10, 2), canary=(10, 8), expected=(9, 2)),
                 id="Scale down stable and canary available"),
    pytest.param(Row(10, 30, 0, 1, stable=(8, 6), canary=(4, 2), older=(3, 3), expected=(4, 8)),
                 id="Do not scale down canaryRS or stable when older RS count >= scaleDownCount"),
    pytest.param(Row(10, 5, 0, 1, stable=(10, 10), expected=(0, 9)),
                 id="Do not round past maxSurge with uneven setWeight divisor"),
    pytest.param(Row(10, 5, 0, 1, stable=(9, 9), expected=(1, 9)),
                 id="Do not round past maxSurge with uneven setWeight divisor (part 2)"),
    pytest.param(Row(10, 10, "0%", "0%", stable=(10, 10), expected=(0, 9)),
                 id="Use maxUnavailable of 1 when percentage of maxUnavailable and maxSurge "
                    "result in 0 replicas"),
    pytest.param(Row(1, 100, stable=(1, 1), scale=scs(replicas=9), routed=True, expected=(9, 1)),
                 id="For canary replicas, use setCanaryScale.replicas when specified along with "
                    "trafficRouting (and ignore setWeight)"),
    pytest.param(Row(4, 100, stable=(4, 4), scale=scs(weight=200), routed=True, expected=(8, 4)),
                 id="Use setCanaryScale.weight for canary replicas when specified with "
                    "trafficRouting (and ignore setWeight)"),
    pytest.param(Row(10, 20, "20%", 0, stable=(10, 10), scale=scs(9, 100, match=True),
                     routed=True, expected=(2, 10)),
                 id="Ignore setCanaryScale replicas/weight when matchTrafficWeight is true"),
    pytest.param(Row(10, 20, "20%", 0, stable=(10, 10), scale=scs(9, 100), expected=(2, 10)),
                 id="Ignore setCanaryScale when trafficRouting is missing and use setWeight for "
                    "replicas"),
    pytest.param(Row(4, 100, 1, 0, stable=(4, 1), expected=(1, 4)),
                 id="honor maxSurge during scale up when stableRS unavailable"),
    pytest.param(Row(3, 99, 0, 2, stable=(3, 3), expected=(0, 1)),
                 id="scale down to maxunavailable without exceeding maxSurge"),
    pytest.param(Row(3, 99, 0, 2, stable=(1, 1), expected=(2, 1)),
                 id="scale down to maxunavailable without exceeding maxSurge (part 2)"),
    pytest.param(Row(4, 100, 1, 0, stable=(4, 1), canary=(1, 1), expected=(1, 3)),
                 id="honor maxUnavailable during scale down stableRS unavailable"),
    pytest.param(Row(4, 0, 1, 0, stable=(0, 0), canary=(4, 4), expected=(4, 1)),
                 id="honor maxUnavailable when aborting or reducing weight part 1"),
    pytest.param(Row(4, 0, 1, 0, stable=(1, 0), canary=(4, 4), expected=(4, 1)),
                 id="honor maxUnavailable when aborting or reducing weight part 2"),
    pytest.param(Row(4, 0, 1, 0, stable=(1, 1), canary=(4, 4), expected=(3, 1)),
                 id="honor maxUnavailable when aborting or reducing weight part 3"),
    pytest.param(Row(4, 1, 4, 4, promote_full=True, stable=(4, 4), expected=(4, 0)),
                 id="promote full does not consider weight"),
    pytest.param(Row(4, 1, 3, 0, promote_full=True, stable=(4, 4), expected=(3, 4)),
                 id="promote full still honors maxSurge/maxUnavailable"),
    pytest.param(Row(1, stable=(1, 1), canary=(1, 1), scale=scs(replicas=1), routed=True,
                     abort_delay=0, aborted=True, expected=(1, 1)),
                 id="aborted with abortScaleDownDelaySeconds:0 and setCanaryScale"),
    pytest.param(Row(1, stable=(1, 1), canary=(1, 1), scale=scs(replicas=1), routed=True,
                     abort_delay=30, aborted=True, expected=(0, 1)),
                 id="aborted with abortScaleDownDelaySeconds>0 and setCanaryScale"),
    pytest.param(Row(10, 5, stable=(10, 10), routed=True, min_pods=2, expected=(2, 10)),
                 id="Honor MinPodsPerReplicaSet when using trafficRouting and starting canary"),
    pytest.param(Row(1, 100, promote_full=True, stable=(1, 1), routed=True, min_pods=2,
                     expected=(1, 1)),
                 id="Cap MinPodsPerReplicaSet when it exceeds rollout replicas with "
                    "trafficRouting"),
]


@pytest.mark.parametrize("row", ARGO_CANARY_ROWS)
def test_replica_counts_match_argos_canary_table(row: Row) -> None:
    assert counts_for(row) == row.expected


def test_a_new_replicaset_that_is_the_stable_one_takes_every_replica() -> None:
    # TestCalculateReplicaCountsForNewDeployment
    same = RSCounts("stable", 10, 0)
    assert basic_canary_counts(replicas=10, weight=10, max_surge=0, max_unavailable=1,
                               new_rs=same, stable_rs=same) == (10, 0)


def test_without_a_distinct_stable_the_new_replicaset_takes_every_replica() -> None:
    # TestCalculateReplicaCountsForCanaryStableRSdEdgeCases
    new = RSCounts("stable", 9, 9)
    for stable in (None, new):
        assert basic_canary_counts(replicas=10, weight=10, max_surge=0, max_unavailable=1,
                                   new_rs=new, stable_rs=stable) == (10, 0)


def test_a_traffic_routed_canary_is_sized_by_its_weight_and_the_stable_stays_full() -> None:
    # TestCalculateReplicaCountsForCanaryTrafficRouting
    assert traffic_routed_counts(RoutedScale(replicas=10, weight=10)) == (1, 10)


# --- TestApproximateWeightedNewStableReplicaCounts ------------------------------------------------

APPROXIMATE_ROWS = [
    # replicas, weight, maxSurge, expected canary, expected stable
    (0, 0, 0, 0, 0), (0, 50, 0, 0, 0), (0, 100, 0, 0, 0),
    (0, 0, 1, 0, 0), (0, 50, 1, 0, 0), (0, 100, 1, 0, 0),
    (1, 0, 0, 0, 1), (1, 1, 0, 0, 1), (1, 49, 0, 0, 1), (1, 50, 0, 1, 0), (1, 99, 0, 1, 0),
    (1, 100, 0, 1, 0),
    (1, 0, 1, 0, 1), (1, 1, 1, 1, 1), (1, 49, 1, 1, 1), (1, 50, 1, 1, 1), (1, 99, 1, 1, 1),
    (1, 100, 1, 1, 0),
    (2, 0, 0, 0, 2), (2, 1, 0, 1, 1), (2, 50, 0, 1, 1), (2, 99, 0, 1, 1), (2, 100, 0, 2, 0),
    (2, 0, 1, 0, 2), (2, 1, 1, 1, 2), (2, 50, 1, 1, 1), (2, 99, 1, 2, 1), (2, 100, 1, 2, 0),
    (3, 10, 0, 1, 2), (3, 25, 0, 1, 2), (3, 33, 0, 1, 2), (3, 34, 0, 1, 2), (3, 49, 0, 1, 2),
    (3, 50, 0, 2, 1),
    (3, 10, 1, 1, 3), (3, 25, 1, 1, 3), (3, 33, 1, 1, 2), (3, 34, 1, 1, 2), (3, 49, 1, 2, 2),
    (3, 50, 1, 2, 2),
    (10, 0, 1, 0, 10), (10, 1, 0, 1, 9), (10, 14, 0, 1, 9), (10, 15, 0, 2, 8), (10, 16, 0, 2, 8),
    (10, 99, 0, 9, 1), (10, 100, 1, 10, 0),
    (10, 0, 1, 0, 10), (10, 1, 1, 1, 10), (10, 18, 1, 2, 9), (10, 19, 1, 2, 9),
    (10, 20, 1, 2, 8), (10, 23, 1, 2, 8), (10, 24, 1, 3, 8), (10, 25, 1, 3, 8),
    (10, 99, 1, 10, 1), (10, 100, 1, 10, 0),
]


@pytest.mark.parametrize(
    ("replicas", "weight", "surge", "canary", "stable"), APPROXIMATE_ROWS,
    ids=[f"replicas:{r}_weight:{w}_surge:{s}" for r, w, s, _, _ in APPROXIMATE_ROWS])
def test_approximate_counts_match_argos_table(
    replicas: int, weight: int, surge: int, canary: int, stable: int
) -> None:
    assert approximate_weighted_counts(replicas=replicas, weight=weight,
                                       max_surge=surge) == (canary, stable)


# --- TestCalculateReplicaCountsForCanaryTrafficRoutingDynamicScale -------------------------------


@dataclass(frozen=True)
class DynamicRow:
    replicas: int
    first_weight: int  # Argo's rolloutMaxReplicas column: the setWeight of the first step
    aborted: bool
    weights: tuple[int, int]  # routed now: canary, stable
    canary: int = 0  # spec replicas (all available); 0: no canary ReplicaSet
    stable: tuple[int, int] = (0, 0)  # spec, available; spec 0: no stable ReplicaSet
    steps: tuple[int, ...] = ()  # further setWeight steps
    expected: tuple[int, int] = (0, 0)


DYNAMIC_ROWS = [
    pytest.param(DynamicRow(10, 20, True, (60, 40), canary=6, stable=(4, 4), steps=(60,),
                            expected=(6, 8)),
                 id="Should scale stable replica up depending on next expected canary downscale "
                    "step, if abort is true"),
    pytest.param(DynamicRow(10, 20, True, (60, 40), canary=1, stable=(4, 4), steps=(60,),
                            expected=(6, 8)),
                 id="Should scale stable replica up depending on available canary replicas, if "
                    "actual number of canaries is less than expected and abort is true"),
    pytest.param(DynamicRow(10, 20, True, (60, 40), canary=2, stable=(8, 4), steps=(60,),
                            expected=(6, 8)),
                 id="Should scale stable replica up depending on available stable replicas, if "
                    "abort is true"),
    pytest.param(DynamicRow(10, 20, True, (60, 40), steps=(60,), expected=(6, 10)),
                 id="Should scale stable up as if canaries are scaled down to 0 if stable and "
                    "canary replicas not passed, and abort is true"),
    pytest.param(DynamicRow(10, 10, False, (10, 90), expected=(1, 9)),
                 id="Should scale down stable"),
    pytest.param(DynamicRow(10, 20, False, (10, 90), expected=(2, 9)),
                 id="Should take max of desired canary (20) > actual (10)"),
    pytest.param(DynamicRow(10, 20, True, (20, 80), expected=(2, 10)),
                 id="Should leave canary scaled up if there is still traffic to it on abort"),
    pytest.param(DynamicRow(10, 20, True, (10, 90), expected=(1, 10)),
                 id="Should reduce canary when there is less traffic to it on abort"),
]


@pytest.mark.parametrize("row", DYNAMIC_ROWS)
def test_dynamic_stable_scale_matches_argos_table(row: DynamicRow) -> None:
    steps = tuple(SetWeightStep(w) for w in (row.first_weight, *row.steps))
    rollout = argo_rollout(replicas=row.replicas, steps=steps, routed=True, max_unavailable=1,
                           dynamic=True)
    revisions = argo_revisions(
        canary=rs_view("canary", row.canary, row.canary) if row.canary else None,
        stable=rs_view("stable", *row.stable) if row.stable[0] else None)
    # as Argo's test, the current step is the first (an abort also goes back to it)
    targets = replica_targets(rollout, revisions, index=0, aborted=row.aborted,
                              current_weight=row.weights[0])
    assert (targets.canary_replicas, targets.stable_replicas) == row.expected


# --- TestGetDesiredCanaryWeightOnAbortWithScaleDownDelay -----------------------------------------

def aborting_rollout(abort_delay: int | None) -> Rollout:
    return argo_rollout(replicas=10, steps=(SetWeightStep(10), SetWeightStep(50)), routed=True,
                        max_surge=1, abort_delay=abort_delay, dynamic=True)


@pytest.mark.parametrize(
    ("abort_delay", "stable_available", "expected"),
    [
        pytest.param(None, 9, 10, id="no explicit delay: weight is held up by canary size "
                                     "(progressive drain unchanged)"),
        pytest.param(30, 5, 10, id="explicit delay: weight steps down gradually while stable "
                                   "is scaling up"),
        pytest.param(30, 9, 0, id="explicit delay: weight reaches zero once stable nearly covers "
                                  "spec.Replicas (deadlock case)"),
        pytest.param(0, 9, 10, id="explicit zero delay (leave canary up indefinitely): weight is "
                                  "held up by canary size"),
    ],
)
def test_an_aborting_dynamic_canary_steps_its_weight_down_as_argo_does(
    abort_delay: int | None, stable_available: int, expected: int
) -> None:
    revisions = argo_revisions(canary=rs_view("canary", 5, 5),
                               stable=rs_view("stable", stable_available, stable_available))
    assert canary_replicas_or_weight(aborting_rollout(abort_delay), revisions, index=0,
                                     aborted=True) == (None, expected)


def test_stable_scales_to_spec_replicas_once_the_abort_weight_reaches_zero() -> None:
    revisions = argo_revisions(canary=rs_view("canary", 5, 5), stable=rs_view("stable", 9, 9))
    targets = replica_targets(aborting_rollout(30), revisions, index=0, aborted=True,
                              current_weight=10)
    assert targets.stable_replicas == 10


# --- TestGetCanaryReplicasOrWeight (the canary rows; shiftd has no blueGreen) --------------------

@pytest.mark.parametrize(
    ("step", "index", "expected"),
    [
        pytest.param(scs(weight=20), 2, (None, 100), id="test full promote rollout"),
        pytest.param(scs(weight=20), 1, (None, 20), id="test canary step weight"),
        pytest.param(scs(replicas=5), 1, (5, 0), id="test canary step replicas"),
    ],
)
def test_canary_replicas_or_weight_match_argo(
    step: SetCanaryScaleStep, index: int, expected: tuple[int | None, int]
) -> None:
    rollout = argo_rollout(replicas=10, steps=(SetWeightStep(10), step), routed=True,
                           max_surge=1)
    revisions = argo_revisions(canary=None, stable=None)
    assert canary_replicas_or_weight(rollout, revisions, index=index, aborted=False) == expected


# --- smaller functions ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("replicas", "weight", "expected"),
    [(10, 0, 0), (10, 20, 2), (10, 25, 3), (10, 33, 4), (10, 99, 10), (10, 100, 10),
     (1, 10, 1), (2, 50, 1), (3, 1, 1)],
)
def test_traffic_weight_rounds_up(replicas: int, weight: int, expected: int) -> None:
    assert traffic_weight_to_replicas(replicas, weight) == expected


@pytest.mark.parametrize(
    ("count", "minimum", "replicas", "expected"),
    [(0, 2, 10, 0), (1, 2, 10, 2), (3, 2, 10, 3), (1, 5, 3, 3), (1, None, 10, 1)],
)
def test_min_pods_per_replicaset_lifts_a_nonzero_count_capped_at_replicas(
    count: int, minimum: int | None, replicas: int, expected: int
) -> None:
    assert with_min_pods(count, minimum=minimum, replicas=replicas) == expected


def test_min_pods_per_replicaset_applies_to_both_sides_under_dynamic_stable_scale() -> None:
    scale = RoutedScale(replicas=10, weight=95, min_pods=3, dynamic_stable_scale=True,
                        current_weights=(95, 5))
    assert traffic_routed_counts(scale) == (10, 3)
    assert traffic_routed_counts(replace(scale, canary_replicas=0)) == (0, 3)


@pytest.mark.parametrize(
    ("surge", "unavailable", "replicas", "expected"),
    [("25%", "25%", 10, (3, 2)), ("25%", "25%", 1, (1, 0)), (0, "25%", 1, (0, 1)),
     (1, 0, 4, (1, 0)), ("0%", "10%", 5, (0, 1)), (0, 0, 4, (0, 1)), ("0%", "0%", 10, (0, 1))],
)
def test_fenceposts_resolve_like_kubernetes_and_both_zero_means_one_unavailable(
    surge: int | str, unavailable: int | str, replicas: int, expected: tuple[int, int]
) -> None:
    assert resolve_fenceposts(max_surge=surge, max_unavailable=unavailable,
                              replicas=replicas) == expected


@pytest.mark.parametrize(
    ("desired", "stable_available", "current", "expected"),
    [
        pytest.param(10, 5, 50, 50, id="the stable is still scaling up: the weight holds"),
        pytest.param(10, 9, 50, 10, id="the stable can take it: down to the step's weight"),
        pytest.param(0, 7, 50, 30, id="past the last step: what the stable cannot take yet"),
        pytest.param(0, 7, 20, 20, id="never back up while stable pods flap"),
        pytest.param(10, 5, None, 50, id="nothing recorded: what the stable cannot take"),
    ],
)
def test_the_abort_traffic_weight_never_exceeds_what_the_stable_can_take_back(
    desired: int, stable_available: int, current: int | None, expected: int
) -> None:
    assert abort_traffic_weight(replicas=10, desired_weight=desired,
                                stable_available=stable_available,
                                current_weight=current) == expected


def test_the_dynamic_abort_weight_is_zero_without_a_smaller_step() -> None:
    assert dynamic_abort_weight(replicas=10, step_weights=(50,), new=RSCounts("c", 5, 5),
                                stable=RSCounts("s", 10, 10), explicit_abort_delay=False) == 0


def test_basic_canary_waits_for_older_replicasets_before_scaling_down() -> None:
    counts = basic_canary_counts(
        replicas=4, weight=50, max_surge=1, max_unavailable=1,
        new_rs=RSCounts("new", 0, 0), stable_rs=RSCounts("stable", 4, 4),
        older=(RSCounts("old", 1, 1),),
    )
    assert counts == (0, 4)


# --- TestAtDesiredReplicaCountsForCanary (a basic canary: setCanaryScale does not apply) ------

def rs_with_pods(name: str, spec: int, available: int, pods: int) -> ReplicaSetView:
    return ReplicaSetView(name=name, pod_hash=name, revision=1, spec_replicas=spec,
                          replicas=pods, ready=available, available=available, template={})


@pytest.mark.parametrize(
    ("weight", "new", "stable", "expected"),
    [
        pytest.param(50, (2, 2, 2), (2, 2, 2), True,
                     id="we are at desired replica counts and availability"),
        pytest.param(50, (2, 1, 2), (2, 2, 2), False,
                     id="new replicaset is not at desired counts or availability"),
        pytest.param(75, (3, 3, 3), (2, 2, 2), False,
                     id="stable replicaset is not at desired counts or availability"),
        pytest.param(75, (3, 3, 1), (1, 0, 1), True,
                     id="stable replicaset is not at desired availability but is at correct "
                        "count"),
        pytest.param(50, (2, 2, 2), (2, 2, 3), False,
                     id="test that when status field lags behind spec.replicas we fail"),
    ],
)
def test_a_step_is_at_its_counts_as_argo_judges_it(
    weight: int, new: tuple[int, int, int], stable: tuple[int, int, int], expected: bool
) -> None:
    steps: tuple[Step, ...] = (SetWeightStep(weight), scs(replicas=2, weight=2))
    rollout = argo_rollout(replicas=4, steps=steps, routed=False, max_surge=1,
                           max_unavailable=1)
    revisions = argo_revisions(canary=rs_with_pods("canary", *new),
                               stable=rs_with_pods("stable", *stable))
    targets = replica_targets(rollout, revisions, index=1, aborted=False)
    assert at_desired_counts(rollout, revisions, targets=targets) is expected
