"""The ``pods/eviction`` subresource: ``POST .../pods/NAME/eviction`` with a policy/v1 Eviction
deletes the pod unless a PodDisruptionBudget forbids it, as a real server answers.

Answers: 201 with a ``Success`` Status (the pod is deleted); 404 for a missing pod; 400 when
the Eviction's name is not the URL's; 429 ``TooManyRequests`` (cause ``DisruptionBudget``)
when the pod's budget allows no disruption now; 500 when more than one budget selects the pod.

A real server reads the budget's ``status.disruptionsAllowed``, kept by the disruption
controller; the emulator has no such controller and works it out at the request from the
pods the budget selects (healthy = Ready and not being deleted; expected = every selected
pod), with ``minAvailable`` or ``maxUnavailable`` as an integer or a percentage (rounded up).
An unhealthy pod may always be evicted while the budget is met (``IfHealthyBudget``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from shiftd.sim.errors import ApiStatusError, bad_request
from shiftd.sim.kinds import ResourceType
from shiftd.sim.store import Store

Obj = dict[str, Any]

TOO_MANY_REQUESTS = "Cannot evict pod as it would violate the pod's disruption budget."


def evicted_status() -> Obj:
    """What a real server answers a granted eviction with."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "code": 201}


def check_eviction(body: Obj, *, name: str) -> None:
    """400 unless ``body`` is an Eviction naming the pod of the URL."""
    if body.get("kind") not in (None, "Eviction"):
        raise bad_request(f"expected an Eviction, got {body.get('kind')!r}")
    named = (body.get("metadata") or {}).get("name")
    if named and named != name:
        raise bad_request("name in URL does not match name in Eviction object")


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector object against labels: a null selector selects nothing, an empty one
    everything (a policy/v1 PodDisruptionBudget's rule)."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or ():
        key, operator = expression.get("key", ""), expression.get("operator", "")
        values = expression.get("values") or ()
        present = key in labels
        if ((operator == "In" and labels.get(key) not in values)
                or (operator == "NotIn" and present and labels[key] in values)
                or (operator == "Exists" and not present)
                or (operator == "DoesNotExist" and present)):
            return False
    return True


def healthy_pod(pod: Obj) -> bool:
    """Ready and not being deleted (what a budget counts as healthy)."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def _scaled(value: Any, expected: int) -> int:
    """An IntOrString against ``expected`` pods, a percentage rounded up."""
    if isinstance(value, str) and value.endswith("%"):
        try:
            return math.ceil(int(value[:-1]) * expected / 100)
        except ValueError:
            return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def desired_healthy(spec: Mapping[str, Any], expected: int) -> int:
    if spec.get("maxUnavailable") is not None:
        return max(0, expected - _scaled(spec["maxUnavailable"], expected))
    return _scaled(spec.get("minAvailable", 1), expected)


def check_budgets(pod: Obj, *, budgets: list[Obj], pods: list[Obj]) -> None:
    """Raise the real server's 429 (or 500) when the pod's budget forbids evicting it now."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    mine = [b for b in budgets if selects((b.get("spec") or {}).get("selector"), labels)]
    if not mine:
        return
    if len(mine) > 1:
        raise ApiStatusError(500, "This pod has more than one PodDisruptionBudget, which the "
                                  "eviction subresource does not support.")
    budget = mine[0]
    spec = budget.get("spec") or {}
    selected = [p for p in pods
                if selects(spec.get("selector"), (p.get("metadata") or {}).get("labels") or {})]
    healthy = sum(1 for p in selected if healthy_pod(p))
    wanted = desired_healthy(spec, len(selected))
    if healthy - (1 if healthy_pod(pod) else 0) >= wanted:
        return
    budget_name = (budget.get("metadata") or {}).get("name", "")
    raise ApiStatusError(429, TOO_MANY_REQUESTS, reason="TooManyRequests", details={
        "causes": [{"reason": "DisruptionBudget",
                    "message": f"The disruption budget {budget_name} needs {wanted} healthy "
                               f"pods and has {healthy} currently"}]})


def is_eviction(rtype: ResourceType, subresource: str | None) -> bool:
    return subresource == "eviction" and rtype.kind == "Pod" and not rtype.group


def evict(store: Store, rtype: ResourceType, *, namespace: str | None, name: str,
          body: Obj) -> Obj:
    """Carry out one eviction request; returns the Status to answer with (201)."""
    check_eviction(body, name=name)
    pod = store.get(rtype, namespace, name)
    budget_type = store.registry.get(("policy", "poddisruptionbudgets"))
    if budget_type is not None:
        budgets, _ = store.list(budget_type, namespace, lambda obj: True)
        pods, _ = store.list(rtype, namespace, lambda obj: True)
        check_budgets(pod, budgets=budgets, pods=pods)
    store.delete(rtype, namespace, name)
    return evicted_status()
