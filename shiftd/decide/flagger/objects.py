"""Which owned objects a Canary's reconcile must write so they are as Flagger makes them.

``owned_puts`` compares each wanted object (``routes``, ``workloads``) with what is there:
a missing one is created; a Service, DestinationRule or the VirtualService whose spec
drifted from what is wanted is rewritten (fields the server fills in, such as a Service's
``clusterIP``, are kept); the VirtualService keeps the weights it routes now. The apex
Service and the VirtualService wait until the primary is ready (Flagger's order). The primary
Deployment and the primary's HPA are only created here: they change only by promotion.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from shiftd.decide.flagger.actions import Put
from shiftd.decide.flagger.observed import Observed
from shiftd.decide.flagger.routes import (
    destination_rules,
    observe_routes,
    service_names,
    services,
    virtual_service,
)
from shiftd.decide.flagger.scaling import primary_hpa_puts
from shiftd.decide.flagger.workloads import primary_deployment, selector_label
from shiftd.model.flagger.canary import Canary

JsonObject = dict[str, Any]


def contains(found: Any, wanted: Any) -> bool:
    """Whether ``found`` holds everything ``wanted`` says (objects: a subset, recursively;
    lists: the same length, item by item)."""
    if isinstance(wanted, Mapping):
        return isinstance(found, Mapping) and all(
            key in found and contains(found[key], value) for key, value in wanted.items())
    if isinstance(wanted, list):
        return (isinstance(found, list) and len(found) == len(wanted)
                and all(contains(f, w) for f, w in zip(found, wanted, strict=True)))
    return bool(found == wanted)


def _put_if_drifted(kind: str, wanted: JsonObject, found: Mapping[str, Any] | None,
                    *, exact: bool) -> Iterator[Put]:
    if found is None:
        yield Put(kind, wanted)
        return
    same = (found.get("spec") == wanted["spec"]) if exact else contains(
        found.get("spec"), wanted["spec"])
    if same:
        return
    updated = copy.deepcopy(dict(found))
    spec = updated.setdefault("spec", {})
    if exact:
        updated["spec"] = wanted["spec"]
    else:
        spec.update(copy.deepcopy(wanted["spec"]))
    yield Put(kind, updated)


def owned_puts(canary: Canary, observed: Observed, *, routed: bool) -> Iterator[Put]:
    """The writes that make the owned objects right. The apex Service and the
    VirtualService only once ``routed`` (the primary is ready, or initialisation is over):
    Flagger points them at the primary only then, so taking over a Service or
    VirtualService already serving traffic never sends it to pods not ready yet."""
    target = observed.target
    if target is None:
        return
    label, value = selector_label(target)
    apex = service_names(canary)[0]
    for wanted in services(canary, label=label, value=value):
        name = wanted["metadata"]["name"]
        if name != apex or routed:
            yield from _put_if_drifted("Service", wanted, observed.services.get(name),
                                       exact=False)
    for wanted in destination_rules(canary):
        name = wanted["metadata"]["name"]
        yield from _put_if_drifted("DestinationRule", wanted,
                                   observed.destination_rules.get(name), exact=True)
    if observed.primary is None:
        yield Put("Deployment", primary_deployment(canary, target))
    yield from primary_hpa_puts(canary, observed, init=True)
    if routed:
        found = observed.virtual_service
        wanted = virtual_service(canary, found, observe_routes(canary, found))
        if found is None or found.get("spec") != wanted["spec"]:
            yield Put("VirtualService", wanted)
