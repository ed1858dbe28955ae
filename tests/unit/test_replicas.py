"""Replica math, in tables taken from Argo Rollouts' documented examples."""

import pytest

from shiftd.decide.rollout.replicas import (
    RSCounts,
    approximate_weighted_counts,
    basic_canary_counts,
    resolve_fenceposts,
    traffic_routed_counts,
    traffic_weight_to_replicas,
)


@pytest.mark.parametrize(
    ("replicas", "weight", "expected"),
    [(1, 10, 1), (1, 0, 0), (2, 50, 1), (10, 25, 3), (5, 90, 5), (4, 100, 4), (3, 1, 1)],
)
def test_traffic_weight_rounds_up(replicas: int, weight: int, expected: int) -> None:
    assert traffic_weight_to_replicas(replicas, weight) == expected


def test_traffic_routed_keeps_stable_at_full_scale() -> None:
    assert traffic_routed_counts(replicas=10, weight=20) == (2, 10)
    assert traffic_routed_counts(replicas=10, weight=20, canary_scale_replicas=5) == (5, 10)


@pytest.mark.parametrize(
    ("surge", "unavailable", "replicas", "expected"),
    [("25%", "25%", 10, (3, 2)), ("25%", "25%", 1, (1, 0)), (0, "25%", 1, (0, 1)),
     (1, 0, 4, (1, 0)), ("0%", "10%", 5, (0, 1))],
)
def test_fenceposts_resolve_like_kubernetes(
    surge: int | str, unavailable: int | str, replicas: int, expected: tuple[int, int]
) -> None:
    assert resolve_fenceposts(max_surge=surge, max_unavailable=unavailable,
                              replicas=replicas) == expected


@pytest.mark.parametrize(
    ("replicas", "weight", "surge", "expected"),
    [(10, 10, 1, (1, 9)), (10, 30, 3, (3, 7)), (3, 50, 0, (2, 1)), (1, 5, 1, (1, 1)),
     (1, 95, 1, (1, 1)), (2, 50, 1, (1, 1)), (0, 50, 1, (0, 0)), (5, 0, 1, (0, 5)),
     (5, 100, 1, (5, 0))],
)
def test_approximate_counts_are_closest_to_the_weight(
    replicas: int, weight: int, surge: int, expected: tuple[int, int]
) -> None:
    assert approximate_weighted_counts(replicas=replicas, weight=weight,
                                       max_surge=surge) == expected


@pytest.mark.parametrize(
    ("replicas", "weight", "surge", "unavailable", "new", "stable", "expected"),
    [
        # Cases from Argo Rollouts' own table (utils/replicaset/canary_test.go):
        # replicas, weight, maxSurge, maxUnavailable, canary (spec, available),
        # stable (spec, available), expected (canary, stable).
        (10, 100, 3, 0, (6, 3), (7, 8), (6, 7)),
        (10, 20, 2, 0, (0, 0), (10, 10), (2, 10)),
        (10, 20, "20%", 0, (0, 0), (10, 10), (2, 10)),
        (10, 20, "20%", 0, (2, 2), (10, 10), (2, 8)),
        (10, 30, 2, 0, (0, 0), (10, 10), (2, 10)),
        (10, 20, 0, 2, (0, 0), (10, 10), (0, 8)),
        (10, 20, 0, "20%", (0, 0), (10, 10), (0, 8)),
        (10, 30, 0, 2, (0, 0), (10, 10), (0, 8)),
        (10, 50, 2, 1, (0, 0), (10, 10), (2, 9)),
        (10, 0, 1, 1, (1, 1), (10, 10), (0, 10)),
        (10, 100, 1, 1, (10, 10), (1, 1), (10, 0)),
        (1, 20, 1, 0, (0, 0), (1, 1), (1, 1)),
        (1, 90, 1, 0, (0, 0), (1, 1), (1, 1)),
        (1, 49, 0, 1, (0, 0), (1, 1), (0, 1)),
        (1, 51, 0, 1, (0, 0), (1, 1), (0, 0)),
        (1, 51, 0, 1, (0, 0), (0, 0), (1, 0)),
        (10, 30, 0, 3, (4, 4), (8, 5), (3, 7)),
        (10, 100, 1, 0, (10, 8), (10, 2), (9, 2)),
        (10, 5, 0, 1, (0, 0), (10, 10), (0, 9)),
        (10, 5, 0, 1, (0, 0), (9, 9), (1, 9)),
        (10, 10, "0%", "0%", (0, 0), (10, 10), (0, 9)),
        (3, 99, 0, 2, (0, 0), (3, 3), (0, 1)),
        (3, 99, 0, 2, (0, 0), (1, 1), (2, 1)),
    ],
)
def test_basic_canary_counts_follow_argo(  # noqa: PLR0917 - one parameter per table column
    replicas: int, weight: int, surge: int, unavailable: int,
    new: tuple[int, int], stable: tuple[int, int], expected: tuple[int, int],
) -> None:
    counts = basic_canary_counts(
        replicas=replicas, weight=weight, max_surge=surge, max_unavailable=unavailable,
        new_rs=RSCounts("new", *new), stable_rs=RSCounts("stable", *stable),
    )
    assert counts == expected


def test_basic_canary_without_stable_puts_everything_on_the_new_replicaset() -> None:
    counts = basic_canary_counts(replicas=4, weight=20, max_surge="25%", max_unavailable="25%",
                                 new_rs=RSCounts("new", 0, 0), stable_rs=None)
    assert counts == (4, 0)


def test_basic_canary_waits_for_older_replicasets_before_scaling_down() -> None:
    counts = basic_canary_counts(
        replicas=4, weight=50, max_surge=1, max_unavailable=1,
        new_rs=RSCounts("new", 0, 0), stable_rs=RSCounts("stable", 4, 4),
        older=(RSCounts("old", 1, 1),),
    )
    assert counts == (0, 4)
