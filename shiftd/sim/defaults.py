"""The defaults a kube-apiserver fills into built-in kinds on every write, and what it allocates.

Each function takes a freshly decoded object (the server's private copy: it may be changed in
place) and, for updates, the stored object it replaces. What they add is what a v1.24 server
adds (see ``shared/apiserver-transcripts/defaults.json``): a pod template's container and pod
defaults and ``creationTimestamp: null``; a Deployment's strategy and limits; a Service's type,
session affinity, ports' protocol and target port, and an allocated cluster IP (kept across
updates); an HPA's minimum; an Event's ``eventTime``/reporting fields.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable, Iterator
from typing import Any

Obj = dict[str, Any]
Defaulter = Callable[[Obj, Obj | None], None]

_PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                   "failureThreshold": 3}
_SERVICE_RANGE = ipaddress.ip_network("10.96.0.0/12")


def _dict(parent: Obj, key: str) -> Obj:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def _pull_policy(image: str) -> str:
    """Always for ``:latest`` or no tag (and no digest), else IfNotPresent."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for key, value in _PROBE_DEFAULTS.items():
        probe.setdefault(key, value)
    http = probe.get("httpGet")
    if isinstance(http, dict):
        http.setdefault("scheme", "HTTP")


def _default_container(container: Any) -> None:
    if not isinstance(container, dict):
        return
    for port in container.get("ports") or ():
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    container.setdefault("resources", {})
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("imagePullPolicy", _pull_policy(str(container.get("image", ""))))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(container.get(probe))
    for variable in container.get("env") or ():
        field_ref = ((variable or {}).get("valueFrom") or {}).get("fieldRef")
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")


def default_pod_spec(spec: Obj) -> None:
    """The PodSpec defaults (containers, restart and DNS policy, scheduler, grace period)."""
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or ():
            _default_container(container)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for volume in spec.get("volumes") or ():
        for source in ("configMap", "secret"):
            if isinstance((volume or {}).get(source), dict):
                volume[source].setdefault("defaultMode", 420)


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
