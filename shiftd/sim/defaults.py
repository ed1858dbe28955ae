"""The defaults a kube-apiserver fills into built-in kinds on every write, and what it allocates.

Each function takes a freshly decoded object (the server's private copy: it may be changed in
place) and, for updates, the stored object it replaces. What they add is what a v1.24 server
adds (see ``shared/apiserver-transcripts/defaults.json``): a pod template's container and pod
defaults and ``creationTimestamp: null``; a Deployment's strategy and limits; a Service's type,
session affinity, ports' protocol and target port, and an allocated cluster IP (kept across
updates); an HPA's minimum; an Event's ``eventTime``/reporting fields. The pod-spec defaults
are ``shiftd.common.podtemplate``'s, the same the daemon applies when it compares templates.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable, Iterator
from typing import Any

from shiftd.common.podtemplate import default_pod_spec

Obj = dict[str, Any]
Defaulter = Callable[[Obj, Obj | None], None]

_SERVICE_RANGE = ipaddress.ip_network("10.96.0.0/12")


def _dict(parent: Obj, key: str) -> Obj:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def _default_template(spec: Obj) -> None:
    template = _dict(spec, "template")
    metadata = _dict(template, "metadata")
    metadata.setdefault("creationTimestamp", None)
    default_pod_spec(_dict(template, "spec"))


def default_replica_set(obj: Obj, current: Obj | None) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("replicas", 1)
    _default_template(spec)


def default_deployment(obj: Obj, current: Obj | None) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("replicas", 1)
    _default_template(spec)
    strategy = _dict(spec, "strategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _dict(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)


def default_pod(obj: Obj, current: Obj | None) -> None:
    spec = _dict(obj, "spec")
    default_pod_spec(spec)
    spec.setdefault("enableServiceLinks", True)


def default_hpa(obj: Obj, current: Obj | None) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("minReplicas", 1)


def default_event(obj: Obj, current: Obj | None) -> None:
    obj.setdefault("eventTime", None)
    obj.setdefault("reportingComponent", "")
    obj.setdefault("reportingInstance", "")


def default_namespace(obj: Obj, current: Obj | None) -> None:
    spec = _dict(obj, "spec")
    spec.setdefault("finalizers", ["kubernetes"])


class ServiceDefaults:
    """Service defaults, with the cluster IPs (and node ports) it hands out."""

    def __init__(self) -> None:
        self._addresses: Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address] = (
            itertools.islice(_SERVICE_RANGE.hosts(), 10, None))
        self._node_ports = itertools.count(30000)

    def __call__(self, obj: Obj, current: Obj | None) -> None:
        spec = _dict(obj, "spec")
        old = (current or {}).get("spec") or {}
        kind = spec.setdefault("type", "ClusterIP")
        for index, port in enumerate(spec.get("ports") or ()):
            if not isinstance(port, dict):
                continue
            port.setdefault("protocol", "TCP")
            if "targetPort" not in port and "port" in port:
                port["targetPort"] = port["port"]
            if kind in ("NodePort", "LoadBalancer") and "nodePort" not in port:
                old_ports = old.get("ports") or ()
                previous = old_ports[index].get("nodePort") if index < len(old_ports) else None
                port["nodePort"] = previous or next(self._node_ports)
        spec.setdefault("sessionAffinity", "None")
        if kind != "ExternalName":
            self._addresses_of(spec, old)
        if kind in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if kind == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)

    def _addresses_of(self, spec: Obj, old: Obj) -> None:
        if not spec.get("clusterIP"):
            spec["clusterIP"] = old.get("clusterIP") or str(next(self._addresses))
        spec.setdefault("clusterIPs", old.get("clusterIPs") or [spec["clusterIP"]])
        spec.setdefault("ipFamilies", old.get("ipFamilies") or ["IPv4"])
        spec.setdefault("ipFamilyPolicy", old.get("ipFamilyPolicy") or "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")


__all__ = [
    "Defaulter", "ServiceDefaults", "default_deployment", "default_event", "default_hpa",
    "default_namespace", "default_pod", "default_pod_spec", "default_replica_set",
]
