"""The resource kinds shiftd talks to, and how their REST paths are built.

One ``ResourceKind`` per kind; the client, the caches and the emulator all use these, so a
path is spelled in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """A Kubernetes resource type at one API version."""

    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    custom: bool = False  # a CustomResourceDefinition: no strategic-merge patch (415)
    status_subresource: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def collection_path(self, namespace: str | None) -> str:
        """Path of the collection, in one namespace or (``None``) across all namespaces."""
        if self.namespaced and namespace is not None:
            return f"{self.api_prefix}/namespaces/{namespace}/{self.plural}"
        return f"{self.api_prefix}/{self.plural}"

    def object_path(self, namespace: str | None, name: str, subresource: str | None = None) -> str:
        path = f"{self.collection_path(namespace)}/{name}"
        return f"{path}/{subresource}" if subresource else path


ROLLOUT = ResourceKind("argoproj.io", "v1alpha1", "Rollout", "rollouts", custom=True)
ANALYSIS_TEMPLATE = ResourceKind(
    "argoproj.io", "v1alpha1", "AnalysisTemplate", "analysistemplates", custom=True,
    status_subresource=False,
)
CLUSTER_ANALYSIS_TEMPLATE = ResourceKind(
    "argoproj.io", "v1alpha1", "ClusterAnalysisTemplate", "clusteranalysistemplates",
    namespaced=False, custom=True, status_subresource=False,
)
ANALYSIS_RUN = ResourceKind(
    "argoproj.io", "v1alpha1", "AnalysisRun", "analysisruns", custom=True,
    status_subresource=False,
)
VIRTUAL_SERVICE = ResourceKind(
    "networking.istio.io", "v1beta1", "VirtualService", "virtualservices", custom=True
)
DESTINATION_RULE = ResourceKind(
    "networking.istio.io", "v1beta1", "DestinationRule", "destinationrules", custom=True
)
REPLICA_SET = ResourceKind("apps", "v1", "ReplicaSet", "replicasets")
DEPLOYMENT = ResourceKind("apps", "v1", "Deployment", "deployments")
SERVICE = ResourceKind("", "v1", "Service", "services")
POD = ResourceKind("", "v1", "Pod", "pods")
EVENT = ResourceKind("", "v1", "Event", "events", status_subresource=False)
NAMESPACE = ResourceKind("", "v1", "Namespace", "namespaces", namespaced=False)
SERVICE_ACCOUNT = ResourceKind("", "v1", "ServiceAccount", "serviceaccounts",
                               status_subresource=False)  # read by the tests and benchmarks only
CUSTOM_RESOURCE_DEFINITION = ResourceKind(
    "apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
    namespaced=False,
)
LEASE = ResourceKind("coordination.k8s.io", "v1", "Lease", "leases", status_subresource=False)
# Flagger's kinds and the workloads a Canary drives
CANARY = ResourceKind("flagger.app", "v1beta1", "Canary", "canaries", custom=True)
METRIC_TEMPLATE = ResourceKind("flagger.app", "v1beta1", "MetricTemplate", "metrictemplates",
                               custom=True, status_subresource=False)
HORIZONTAL_POD_AUTOSCALER = ResourceKind("autoscaling", "v2", "HorizontalPodAutoscaler",
                                         "horizontalpodautoscalers")
