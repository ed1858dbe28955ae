"""The primary's HPA and the canary's scale-from-zero, as Flagger's reconcilers decide them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shiftd.decide.flagger.autoscaler import (
    AutoscalerRef,
    AutoscalerRefError,
    CreatePrimaryHpa,
    UpdatePrimaryHpa,
    parse_autoscaler_ref,
    primary_hpa_spec,
    reconcile_primary_hpa,
    scale_from_zero_replicas,
)

CPU_99 = [{"type": "Resource", "resource": {
    "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 99}}}]
BEHAVIOR = {"scaleDown": {"stabilizationWindowSeconds": 300}}


def canary(*, api_version: str = "autoscaling/v2", **overrides: Any) -> dict[str, Any]:
    ref = {"apiVersion": api_version, "kind": "HorizontalPodAutoscaler", "name": "podinfo-hpa",
           **overrides}
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "test", "uid": "u-1"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                   "name": "podinfo"},
                     "autoscalerRef": ref}}


def user_hpa(*, minimum: int | None = 2, maximum: int = 4, metrics: Any = CPU_99,
             labels: dict[str, str] | None = None,
             annotations: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                               "name": "podinfo"},
                            "maxReplicas": maximum, "metrics": metrics, "behavior": BEHAVIOR}
    if minimum is not None:
        spec["minReplicas"] = minimum
    metadata: dict[str, Any] = {"name": "podinfo-hpa", "namespace": "test",
                                "labels": labels or {}, "annotations": annotations or {}}
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": metadata, "spec": spec}


def test_the_primary_gets_its_own_hpa_pointed_at_the_primary_deployment() -> None:
    action = reconcile_primary_hpa(
        canary=canary(), init=True, existing_primary=None,
        canary_hpa=user_hpa(labels={"app": "podinfo", "kustomize.toolkit.fluxcd.io/name": "x"},
                            annotations={"note": "kept off"}))
    assert action == CreatePrimaryHpa({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": "podinfo-hpa-primary", "namespace": "test",
            "labels": {"app": "podinfo"},
            "ownerReferences": [{"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
                                 "name": "podinfo", "uid": "u-1", "controller": True,
                                 "blockOwnerDeletion": True}]},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": "podinfo-primary"},
                 "minReplicas": 2, "maxReplicas": 4, "metrics": CPU_99, "behavior": BEHAVIOR}})


@pytest.mark.parametrize(("overrides", "minimum", "maximum"), [
    ({}, 2, 4),
    ({"primaryScalerReplicas": {"minReplicas": 3}}, 3, 4),
    ({"primaryScalerReplicas": {"maxReplicas": 10}}, 2, 10),
    ({"primaryScalerReplicas": {"minReplicas": 1, "maxReplicas": 6}}, 1, 6),
])
def test_primary_scaler_replicas_override_the_copied_min_and_max(
        overrides: dict[str, Any], minimum: int, maximum: int) -> None:
    ref = parse_autoscaler_ref(canary(**overrides)["spec"]["autoscalerRef"])
    assert ref is not None
    spec = primary_hpa_spec(canary_hpa=user_hpa(), target_name="podinfo", ref=ref)
    assert (spec["minReplicas"], spec["maxReplicas"]) == (minimum, maximum)


def test_an_hpa_without_min_replicas_gives_a_primary_without_one() -> None:
    ref = AutoscalerRef(api_version="autoscaling/v2", kind="HorizontalPodAutoscaler", name="h")
    spec = primary_hpa_spec(canary_hpa=user_hpa(minimum=None), target_name="app", ref=ref)
    assert "minReplicas" not in spec and spec["scaleTargetRef"]["name"] == "app-primary"


@pytest.mark.parametrize("api_version", ["autoscaling/v2", "autoscaling/v2beta2"])
def test_both_hpa_api_versions_are_accepted(api_version: str) -> None:
    ref = parse_autoscaler_ref(canary(api_version=api_version)["spec"]["autoscalerRef"])
    assert ref is not None and ref.name == "podinfo-hpa"


@pytest.mark.parametrize(("raw", "message"), [
    ({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "s"}, "kind"),
    ({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "name": "h"},
     "apiVersion"),
    ({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler"}, "name is required"),
    ({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "h",
      "primaryScalerReplicas": {"minReplicas": -1}}, "minReplicas"),
])
def test_an_unusable_autoscaler_ref_is_refused(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(AutoscalerRefError, match=message):
        parse_autoscaler_ref(raw)


def test_a_canary_without_autoscaler_ref_has_no_primary_hpa() -> None:
    plain = canary()
    del plain["spec"]["autoscalerRef"]
    assert parse_autoscaler_ref(None) is None
    assert reconcile_primary_hpa(canary=plain, canary_hpa=user_hpa(), existing_primary=None,
                                 init=False) is None


def created(hpa: dict[str, Any]) -> dict[str, Any]:
    action = reconcile_primary_hpa(canary=canary(), canary_hpa=hpa, existing_primary=None,
                                   init=True)
    assert isinstance(action, CreatePrimaryHpa)
    return {**action.body, "metadata": {**action.body["metadata"], "resourceVersion": "7"}}


@pytest.mark.parametrize(("changed", "init", "updates"), [
    (user_hpa(maximum=10), False, True),
    (user_hpa(minimum=1), False, True),
    (user_hpa(metrics=[{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]),
     False, True),
    (user_hpa(), False, False),
    (user_hpa(maximum=10), True, False),  # during initialisation Flagger only creates
])
def test_the_primary_hpa_follows_the_users_hpa_at_promotion_only(
        changed: dict[str, Any], init: bool, updates: bool) -> None:
    existing = created(user_hpa())
    action = reconcile_primary_hpa(canary=canary(), canary_hpa=changed,
                                   existing_primary=existing, init=init)
    if not updates:
        assert action is None
        return
    assert isinstance(action, UpdatePrimaryHpa)
    assert action.body["metadata"]["resourceVersion"] == "7"
    for key in ("minReplicas", "maxReplicas", "metrics"):
        assert action.body["spec"][key] == changed["spec"][key]
    assert action.body["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"


def test_an_update_keeps_labels_by_prefix_only_and_then_is_a_fixed_point() -> None:
    source = user_hpa(labels={"app": "podinfo", "team/x": "a"},
                      annotations={"team/owner": "b", "other": "c"})
    existing = created(source)
    action = reconcile_primary_hpa(canary=canary(), canary_hpa=source, existing_primary=existing,
                                   init=False, include_label_prefixes=["team/"])
    assert isinstance(action, UpdatePrimaryHpa)
    assert action.body["metadata"]["labels"] == {"team/x": "a"}
    assert action.body["metadata"]["annotations"] == {"team/owner": "b"}
    again = reconcile_primary_hpa(canary=canary(), canary_hpa=source,
                                  existing_primary=action.body, init=False,
                                  include_label_prefixes=["team/"])
    assert again is None


def test_by_default_an_update_drops_the_primary_hpas_labels_as_flagger_does() -> None:
    source = user_hpa(labels={"app": "podinfo"})
    action = reconcile_primary_hpa(canary=canary(), canary_hpa=source,
                                   existing_primary=created(source), init=False)
    assert isinstance(action, UpdatePrimaryHpa)
    assert "labels" not in action.body["metadata"]


def test_reconciling_does_not_change_its_inputs() -> None:
    source, existing = user_hpa(maximum=9), created(user_hpa())
    before = copy.deepcopy((source, existing))
    reconcile_primary_hpa(canary=canary(), canary_hpa=source, existing_primary=existing,
                          init=False)
    assert (source, existing) == before


@pytest.mark.parametrize(("deployment", "kind", "hpa_min", "primary", "replicas"), [
    (3, "HorizontalPodAutoscaler", 5, 4, 3),   # the Deployment's own replicas win
    (0, "HorizontalPodAutoscaler", 5, 4, 5),   # else the HPA's minReplicas ...
    (0, "HorizontalPodAutoscaler", 1, 4, 1),   # ... only when above one
    (None, "HorizontalPodAutoscaler", None, 4, 1),
    (0, None, None, 4, 4),                     # without an autoscaler, the primary's
    (0, None, None, 0, 1),
    (None, None, None, None, 1),
    (0, "ScaledObject", 5, 4, 1),
])
def test_the_canary_scales_up_from_zero_as_flagger_decides(
        deployment: int | None, kind: str | None, hpa_min: int | None, primary: int | None,
        replicas: int) -> None:
    assert scale_from_zero_replicas(deployment_replicas=deployment, autoscaler_kind=kind,
                                    hpa_min_replicas=hpa_min, primary_replicas=primary) == replicas
