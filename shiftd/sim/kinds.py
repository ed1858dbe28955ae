"""The resource types the emulator serves: the built-in ones and those CRDs register.

A ``ResourceType`` is one REST resource (``group`` + ``plural``) with every version it serves
over a single storage. ``Registry`` maps URL coordinates to types, turns a
CustomResourceDefinition object into a type (with one schema processor per version, compiled
on first use: pruning, defaults, validation) and produces the discovery documents. Built-in
types carry their defaulter (``defaults``) and what the server checks of them. It also finds
and reads the CRD files the project ships.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shiftd.sim import defaults
from shiftd.sim.defaults import Defaulter
from shiftd.sim.schema import Cause, Processor, compile_processor

CRD_GROUP = "apiextensions.k8s.io"
_CRD_KIND = "CustomResourceDefinition"


@dataclass(frozen=True, slots=True)
class ResourceType:
    """One REST resource served at one or more versions over a single storage."""

    group: str
    plural: str
    kind: str
    versions: tuple[str, ...]
    namespaced: bool = True
    custom: bool = False  # custom resources refuse strategic-merge patches (415)
    status_subresource: bool = False
    short_names: tuple[str, ...] = ()
    # Per-version schema processors; only custom resources have them.
    processors: LazyProcessors | None = None
    # What ``status`` a freshly created object of a built-in kind gets.
    initial_status: Mapping[str, Any] | None = None
    crd_generation: int = 0
    # The server's defaults for a built-in kind.
    defaulter: Defaulter | None = None
    # Whether the kind keeps metadata.generation (Services, Events, Leases... do not).
    generation: bool = False
    # The scale subresource's specReplicasPath, which must hold an integer.
    scale_replicas_path: str | None = None
    # ReplicaSets and Deployments: spec.selector is immutable and must match the template.
    pod_selector: bool = False
    # Services' names must be DNS-1035 labels, Namespaces' RFC 1123 labels; others subdomains.
    name_rule: str = "subdomain"

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    def process(self, obj: dict[str, Any], version: str, stored: dict[str, Any] | None = None
                ) -> tuple[dict[str, Any], list[Cause]]:
        """A custom resource pruned and defaulted by its schema, and its invalid fields.

        ``stored`` is the object it replaces: its fields, already processed, are reused
        where unchanged (when it was stored through the same version).
        """
        if self.processors is None:
            return obj, []
        if stored is not None and stored.get("apiVersion") != self.api_version(version):
            stored = None
        return self.processors.get(version)(obj, stored)


class LazyProcessors:
    """One schema processor per CRD version, compiled on first use (the Argo schemas are
    large, and most tests never write most kinds)."""

    def __init__(self, schemas: Mapping[str, Mapping[str, Any] | None]) -> None:
        self._schemas = dict(schemas)
        self._compiled: dict[str, Processor] = {}

    def get(self, version: str) -> Processor:
        processor = self._compiled.get(version)
        if processor is None:
            processor = self._compiled[version] = compile_processor(self._schemas.get(version))
        return processor


def _builtin(
    group: str, version: str, kind: str, plural: str, **options: Any
) -> ResourceType:
    return ResourceType(group=group, plural=plural, kind=kind, versions=(version,), **options)


def builtin_types() -> list[ResourceType]:
    """The built-in kinds: enough of core/v1, apps/v1 and apiextensions for shiftd."""
    return [
        _builtin("", "v1", "Namespace", "namespaces", namespaced=False, status_subresource=True,
                 short_names=("ns",), initial_status={"phase": "Active"},
                 defaulter=defaults.default_namespace, name_rule="label"),
        _builtin("", "v1", "Service", "services", status_subresource=True,
                 short_names=("svc",), initial_status={"loadBalancer": {}},
                 defaulter=defaults.ServiceDefaults(), name_rule="dns1035"),
        _builtin("", "v1", "Pod", "pods", status_subresource=True, short_names=("po",),
                 initial_status={"phase": "Pending"}, defaulter=defaults.default_pod),
        _builtin("", "v1", "Event", "events", short_names=("ev",),
                 defaulter=defaults.default_event),
        _builtin("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
        _builtin("", "v1", "Secret", "secrets"),
        _builtin("apps", "v1", "ReplicaSet", "replicasets", status_subresource=True,
                 short_names=("rs",), initial_status={"replicas": 0},
                 defaulter=defaults.default_replica_set, generation=True, pod_selector=True),
        _builtin("apps", "v1", "Deployment", "deployments", status_subresource=True,
                 short_names=("deploy",), initial_status={},
                 defaulter=defaults.default_deployment, generation=True, pod_selector=True),
        # v2 preferred; v2beta2 (the same fields) still served, as by 1.24 (removed in 1.26)
        ResourceType(group="autoscaling", plural="horizontalpodautoscalers",
                     kind="HorizontalPodAutoscaler", versions=("v2", "v2beta2"),
                     status_subresource=True, short_names=("hpa",),
                     initial_status={"desiredReplicas": 0, "currentMetrics": None},
                     defaulter=defaults.default_hpa),
        _builtin("coordination.k8s.io", "v1", "Lease", "leases"),
        _builtin("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets",
                 status_subresource=True, short_names=("pdb",), initial_status={},
                 generation=True),
        _builtin(CRD_GROUP, "v1", "CustomResourceDefinition", "customresourcedefinitions",
                 namespaced=False, status_subresource=True, short_names=("crd", "crds"),
                 generation=True),
    ]


def crd_resource_type(crd: Mapping[str, Any]) -> ResourceType:
    """The resource type a CustomResourceDefinition declares; raises ``ValueError`` if bad."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")
    if not (group and plural and kind):
        raise ValueError("spec.group, spec.names.plural and spec.names.kind are required")
    name = (crd.get("metadata") or {}).get("name")
    if name != f"{plural}.{group}":
        raise ValueError(f'metadata.name must be "{plural}.{group}"')
    served = [v for v in spec.get("versions") or [] if v.get("served", True)]
    if not served:
        raise ValueError("spec.versions must contain at least one served version")
    processors = LazyProcessors(
        {v["name"]: (v.get("schema") or {}).get("openAPIV3Schema") for v in served}
    )
    scales = [(v.get("subresources") or {}).get("scale") for v in served]
    scale = next((s for s in scales if isinstance(s, Mapping)), None)
    return ResourceType(
        group=group,
        plural=plural,
        kind=kind,
        versions=tuple(v["name"] for v in served),
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        custom=True,
        status_subresource=any("status" in (v.get("subresources") or {}) for v in served),
        short_names=tuple(names.get("shortNames") or ()),
        processors=processors,
        crd_generation=int((crd.get("metadata") or {}).get("generation", 0)),
        generation=True,
        scale_replicas_path=scale.get("specReplicasPath") if scale else None,
    )


def crd_status(crd: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The status a real server gives an accepted CRD (Established, NamesAccepted)."""
    spec = crd.get("spec") or {}
    storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    return {
        "acceptedNames": dict(spec.get("names") or {}),
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": storage,
    }


class Registry:
    """The resource types currently served, by URL coordinates."""

    def __init__(self, types: Iterable[ResourceType]) -> None:
        self._by_key: dict[tuple[str, str], ResourceType] = {}
        for resource_type in types:
            self.add(resource_type)

    def add(self, resource_type: ResourceType) -> None:
        self._by_key[resource_type.key] = resource_type

    def remove(self, key: tuple[str, str]) -> ResourceType | None:
        return self._by_key.pop(key, None)

    def get(self, key: tuple[str, str]) -> ResourceType | None:
        return self._by_key.get(key)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        resource_type = self._by_key.get((group, plural))
        if resource_type is None or version not in resource_type.versions:
            return None
        return resource_type

    def types(self) -> list[ResourceType]:
        return list(self._by_key.values())

    def crd_type(self) -> ResourceType:
        crd = self._by_key[(CRD_GROUP, "customresourcedefinitions")]
        return crd

    # --- discovery ---------------------------------------------------------------------------

    def group_versions(self) -> dict[str, list[str]]:
        """Served versions per named group (not the core group), preferred version first."""
        groups: dict[str, list[str]] = {}
        for resource_type in self._by_key.values():
            if not resource_type.group:
                continue
            versions = groups.setdefault(resource_type.group, [])
            for version in resource_type.versions:
                if version not in versions:
                    versions.append(version)
        return groups

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        """The APIResourceList for ``/api/v1`` or ``/apis/{group}/{version}``."""
        resources: list[dict[str, Any]] = []
        for resource_type in self._by_key.values():
            if resource_type.group != group or version not in resource_type.versions:
                continue
            resources.append({
                "name": resource_type.plural,
                "singularName": resource_type.singular,
                "namespaced": resource_type.namespaced,
                "kind": resource_type.kind,
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch",
                          "update", "watch"],
                **({"shortNames": list(resource_type.short_names)}
                   if resource_type.short_names else {}),
            })
            if resource_type.status_subresource:
                resources.append({
                    "name": f"{resource_type.plural}/status",
                    "singularName": "",
                    "namespaced": resource_type.namespaced,
                    "kind": resource_type.kind,
                    "verbs": ["get", "patch", "update"],
                })
            if resource_type.key == ("", "pods"):  # served by shiftd.sim.eviction
                resources.append({"name": "pods/eviction", "singularName": "", "namespaced": True,
                                  "group": "policy", "version": "v1", "kind": "Eviction",
                                  "verbs": ["create"]})
        if not resources:
            return None
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def api_group(self, group: str) -> dict[str, Any] | None:
        versions = self.group_versions().get(group)
        if not versions:
            return None
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries,
                "preferredVersion": entries[0]}

    def api_group_list(self) -> dict[str, Any]:
        groups = [self.api_group(group) for group in sorted(self.group_versions())]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [g for g in groups if g]}


# --- the CRD files the project ships ---------------------------------------------------------

_DEFAULT_CRD_FILES = (
    "argo-rollouts/rollout-crd.yaml",
    "argo-rollouts/analysis-template-crd.yaml",
    "argo-rollouts/cluster-analysis-template-crd.yaml",
    "argo-rollouts/analysis-run-crd.yaml",
    "istio/virtualservices-crd.yaml",
    "istio/destinationrules-crd.yaml",
    "istio/gateways-crd.yaml",
)


def _crds_dir() -> Path:
    configured = os.environ.get("SHIFTD_CRDS_DIR")
    if configured:
        return Path(configured)
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for directory in (start, *start.parents):
            candidate = directory / "shared" / "crds"
            if candidate.is_dir():
                return candidate
    raise FileNotFoundError(
        "cannot find shared/crds above the package or the working directory; "
        "set SHIFTD_CRDS_DIR"
    )


def default_crd_files() -> list[Path]:
    """The Argo Rollouts and Istio CRD files shiftd needs.

    Looked up in ``$SHIFTD_CRDS_DIR``, else in the first ``shared/crds`` found walking up from
    this package or from the working directory.
    """
    directory = _crds_dir()
    return [directory / relative for relative in _DEFAULT_CRD_FILES]


def flagger_crd_files() -> list[Path]:
    """Flagger's CRD file (Canary, MetricTemplate, AlertProvider), found as the defaults are."""
    return [_crds_dir() / "flagger" / "crd.yaml"]


def load_crd_documents(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition in the given YAML files (multi-document files allowed)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    documents: list[dict[str, Any]] = []
    for path in paths:
        with Path(path).open(encoding="utf-8") as stream:
            for document in yaml.load_all(stream, Loader=loader):
                if isinstance(document, dict) and document.get("kind") == _CRD_KIND:
                    documents.append(document)
    return documents
