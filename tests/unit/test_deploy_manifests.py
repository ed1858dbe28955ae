"""deploy/: what `kubectl apply -k deploy/` installs, validated offline against Kubernetes'
own schemas (the kubernetes-validate package ships them, so no cluster and no network), and
checked for what running shiftd in production needs: two replicas with leader election,
RollingUpdate, probes, requests and limits, a restrictive securityContext, a disruption
budget, the metrics Service and ServiceMonitor, and RBAC with nothing beyond what the daemon
does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from shiftd.config import parse_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES_VERSION = "1.30.0"  # the oldest version the manifests promise to work with
OPERATOR_FILES = ("servicemonitor.yaml", "prometheus-rules.yaml")  # need the operator's CRDs
Obj = dict[str, Any]


def load_documents(path: Path) -> list[Obj]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def kustomize(directory: Path) -> list[Obj]:
    """What `kubectl kustomize` builds, for the features deploy/ uses (resources, directories,
    namespace, images): enough to test without kubectl."""
    kustomization = load_documents(directory / "kustomization.yaml")[0]
    documents: list[Obj] = []
    for entry in kustomization["resources"]:
        path = directory / entry
        documents += kustomize(path) if path.is_dir() else load_documents(path)
    namespace = kustomization.get("namespace")
    for document in documents:
        if namespace and document["kind"] not in CLUSTER_SCOPED:
            document["metadata"]["namespace"] = namespace
    return documents


CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def installed() -> dict[tuple[str, str], Obj]:
    return {(d["kind"], d["metadata"]["name"]): d for d in kustomize(DEPLOY)}


def one(kind: str, name: str = "shiftd") -> Obj:
    return installed()[(kind, name)]


def test_the_kustomization_installs_shiftd_and_its_crds() -> None:
    assert set(installed()) == {
        ("CustomResourceDefinition", "rollouts.argoproj.io"),
        ("CustomResourceDefinition", "analysistemplates.argoproj.io"),
        ("CustomResourceDefinition", "clusteranalysistemplates.argoproj.io"),
        ("CustomResourceDefinition", "analysisruns.argoproj.io"),
        ("Namespace", "shiftd"), ("ServiceAccount", "shiftd"), ("ClusterRole", "shiftd"),
        ("ClusterRoleBinding", "shiftd"), ("Role", "shiftd-leader-election"),
        ("RoleBinding", "shiftd-leader-election"), ("ConfigMap", "shiftd"),
        ("Deployment", "shiftd"), ("PodDisruptionBudget", "shiftd"),
        ("Service", "shiftd-metrics"),
    }


def test_every_manifest_in_deploy_is_installed_or_needs_the_prometheus_operator() -> None:
    listed = set(load_documents(DEPLOY / "kustomization.yaml")[0]["resources"])
    manifests = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert manifests - listed == set(OPERATOR_FILES)


def every_built_in_document() -> list[Obj]:
    operator = [d for name in OPERATOR_FILES for d in load_documents(DEPLOY / name)]
    return [*installed().values(), *operator]


@pytest.mark.parametrize("document", [
    pytest.param(d, id=f"{d['kind']}/{d['metadata']['name']}")
    for d in kustomize(DEPLOY)])
def test_every_installed_object_is_valid_under_kubernetes_schemas(document: Obj) -> None:
    # strict: an unknown (misspelt) field is an error too.
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_builds_the_same_objects() -> None:
    built = subprocess.run(["kubectl", "kustomize", str(DEPLOY)], capture_output=True,
                           text=True, timeout=60, check=True).stdout
    objects = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(built) if d}
    assert set(objects) == set(installed())
    container = objects[("Deployment", "shiftd")]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "shiftd:0.1.0"


def test_the_configuration_is_valid_and_elects_a_leader() -> None:
    settings = parse_settings(yaml.safe_load(one("ConfigMap")["data"]["shiftd.yaml"]),
                              source="deploy/configmap.yaml")
    assert settings.kubernetes.in_cluster
    assert settings.leader_election.enabled
    assert settings.listen.address == "0.0.0.0"  # so the probes and Prometheus reach it
    probe_port = pod_container()["ports"][0]["containerPort"]
    assert settings.listen.port == probe_port


def pod_spec() -> Obj:
    spec: Obj = one("Deployment")["spec"]["template"]["spec"]
    return spec


def pod_container() -> Obj:
    [container] = pod_spec()["containers"]
    assert isinstance(container, dict)
    return container


def test_two_replicas_roll_with_a_standby_always_up() -> None:
    spec = one("Deployment")["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    budget = one("PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] == 1
    assert budget["selector"]["matchLabels"].items() <= \
        one("Deployment")["spec"]["template"]["metadata"]["labels"].items()


def test_the_probes_ask_healthz_and_readyz() -> None:
    container = pod_container()
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_the_container_has_requests_and_limits() -> None:
    resources = pod_container()["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"cpu", "memory"}


def test_the_pod_runs_non_root_read_only_with_no_capabilities() -> None:
    pod, container = pod_spec()["securityContext"], pod_container()["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m for m in pod_container()["volumeMounts"]}
    assert mounts["/etc/shiftd"]["readOnly"] is True
    assert set(mounts) == {"/etc/shiftd", "/tmp"}  # the only writable place is an emptyDir


def rules_of(kind: str, name: str) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for rule in one(kind, name)["rules"]
            for group in rule["apiGroups"] for resource in rule["resources"]
            for verb in rule["verbs"]}


def grants(group: str, resources: str, verbs: str) -> set[tuple[str, str, str]]:
    return {(group, r, v) for r in resources.split() for v in verbs.split()}


def test_the_cluster_role_grants_only_what_the_daemon_does() -> None:
    assert rules_of("ClusterRole", "shiftd") == (
        grants("argoproj.io", "rollouts", "get list watch patch")
        | grants("argoproj.io", "rollouts/status", "patch")
        | grants("argoproj.io", "analysisruns", "get list watch create patch delete")
        | grants("argoproj.io", "analysistemplates clusteranalysistemplates", "get list watch")
        | grants("apps", "deployments", "get list watch patch")
        | grants("apps", "replicasets", "get list watch create patch delete")
        | grants("", "services", "get list watch patch")
        | grants("", "secrets", "get")
        | grants("", "events", "create patch")
        | grants("", "pods", "get list patch")  # restartAt, canary/stable pod metadata
        | grants("", "pods/eviction", "create")
        | grants("networking.istio.io", "virtualservices destinationrules",
                 "get list watch patch")
        # Flagger Canaries
        | grants("flagger.app", "canaries", "get list watch patch")
        | grants("flagger.app", "canaries/status", "patch")
        | grants("flagger.app", "metrictemplates", "get list watch")
        | grants("apps", "deployments", "get list watch create update patch")
        | grants("autoscaling", "horizontalpodautoscalers", "get list watch create update")
        | grants("", "services", "create update")
        | grants("networking.istio.io", "virtualservices destinationrules", "create update"))


def test_leases_are_granted_in_shiftds_namespace_only() -> None:
    role = one("Role", "shiftd-leader-election")
    assert role["metadata"]["namespace"] == "shiftd"
    assert rules_of("Role", "shiftd-leader-election") == grants(
        "coordination.k8s.io", "leases", "get list watch create update")
    binding = one("RoleBinding", "shiftd-leader-election")
    assert binding["roleRef"]["name"] == "shiftd-leader-election"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "shiftd",
                                    "namespace": "shiftd"}]
    assert pod_spec()["serviceAccountName"] == "shiftd"


def test_the_service_and_service_monitor_reach_every_replicas_metrics() -> None:
    service = one("Service", "shiftd-metrics")
    pod_labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    [port] = service["spec"]["ports"]
    assert port["targetPort"] == pod_container()["ports"][0]["name"]
    [monitor] = load_documents(DEPLOY / "servicemonitor.yaml")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= \
        service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [
        service["metadata"]["namespace"]]
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == port["name"]
    assert endpoint["path"] == "/metrics"
