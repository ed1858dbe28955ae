"""A Canary's autoscaler, joined to the state machine: the primary's HPA made at
initialisation and refreshed at promotion (``autoscaler.reconcile_primary_hpa``), and the
replicas a target gets when a new revision scales it up from zero.
"""

from __future__ import annotations

from typing import Any

from shiftd.decide.flagger.actions import Put
from shiftd.decide.flagger.autoscaler import (
    AutoscalerRefError,
    parse_autoscaler_ref,
    reconcile_primary_hpa,
    scale_from_zero_replicas,
)
from shiftd.decide.flagger.observed import Observed
from shiftd.decide.flagger.workloads import replicas
from shiftd.model.flagger.canary import Canary, InvalidCanaryError

HPA_KIND = "HorizontalPodAutoscaler"


def _as_mapping(canary: Canary) -> dict[str, Any]:
    return {"metadata": {"name": canary.name, "namespace": canary.namespace,
                         "uid": canary.uid},
            "spec": {"targetRef": {"name": canary.spec.target_ref.name},
                     "autoscalerRef": canary.spec.autoscaler_ref}}


def primary_hpa_puts(canary: Canary, observed: Observed, *, init: bool) -> list[Put]:
    """The primary HPA to write (created once; updated only at promotion, ``init=False``)."""
    if canary.spec.autoscaler_ref is None or observed.autoscaler is None:
        return []
    try:
        found = reconcile_primary_hpa(canary=_as_mapping(canary),
                                      canary_hpa=observed.autoscaler,
                                      existing_primary=observed.primary_autoscaler, init=init)
    except AutoscalerRefError as error:
        raise InvalidCanaryError(str(error)) from None
    return [] if found is None else [Put(HPA_KIND, found.body)]


def scale_up_replicas(canary: Canary, observed: Observed) -> int:
    """What the target is scaled to when a new revision is detected (Flagger's
    ScaleFromZero)."""
    try:
        ref = parse_autoscaler_ref(canary.spec.autoscaler_ref)
    except AutoscalerRefError as error:
        raise InvalidCanaryError(str(error)) from None
    hpa_min = ((observed.autoscaler or {}).get("spec") or {}).get("minReplicas")
    target_spec = (observed.target or {}).get("spec") or {}
    return scale_from_zero_replicas(
        deployment_replicas=target_spec.get("replicas"),
        autoscaler_kind=ref.kind if ref is not None else None,
        hpa_min_replicas=hpa_min,
        primary_replicas=replicas(observed.primary) if observed.primary is not None else None)
