"""ReplicaSetViews: a Rollout's ReplicaSet views reused for the very same cached objects."""

from __future__ import annotations

from typing import Any

from shiftd.controllers.rollout_inputs import ReplicaSetViews


def replica_set(name: str, *, owner: str, available: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "shop",
                     "ownerReferences": [{"uid": owner, "controller": True}]},
        "spec": {"replicas": 2},
        "status": {"replicas": 2, "availableReplicas": available},
    }


def test_the_same_objects_give_the_same_views_and_a_replaced_one_a_new_view() -> None:
    views = ReplicaSetViews()
    stable = replica_set("web-1", owner="u-1", available=2)
    canary = replica_set("web-2", owner="u-1", available=0)
    first = views.views("shop/web", "u-1", [stable, canary])
    assert [view.available for view in first] == [2, 0] and all(v.owned for v in first)
    assert all(a is b for a, b in zip(views.views("shop/web", "u-1", [stable, canary]), first,
                                      strict=True))

    ready = replica_set("web-2", owner="u-1", available=2)  # the cache replaced the canary
    again = views.views("shop/web", "u-1", [stable, ready])
    assert again[0] is first[0]
    assert again[1] is not first[1] and again[1].available == 2


def test_views_are_not_reused_for_another_uid_nor_after_being_forgotten() -> None:
    views = ReplicaSetViews()
    stable = replica_set("web-1", owner="u-1", available=2)
    first = views.views("shop/web", "u-1", [stable])
    # the Rollout was deleted and made again under the same name: not its ReplicaSet any more
    recreated = views.views("shop/web", "u-2", [stable])
    assert recreated[0] is not first[0] and not recreated[0].owned
    views.forget("shop/web")
    assert len(views) == 0
    assert views.views("shop/web", "u-1", [stable])[0] is not first[0]
