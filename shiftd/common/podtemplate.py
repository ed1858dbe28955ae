"""The defaults a Kubernetes API server fills into a pod template, and semantic equality.

A ReplicaSet (or Deployment) read back from a real API server carries fields its writer never
set (``terminationMessagePath``, ``imagePullPolicy``, ``restartPolicy``, ``dnsPolicy``,
``schedulerName``, ports' ``protocol``, ``creationTimestamp: null`` …, as recorded in
``shared/apiserver-transcripts/defaults.json``); a Rollout's template, a custom resource, has
none of them. ``default_pod_template`` applies the server's defaults (v1.24's
``SetDefaults_*`` for pod specs, containers, probes, ports, env and volumes) so two templates
can be compared as Argo's ``PodTemplateEqualIgnoreHash`` does: defaults applied to both sides,
empty values ignored. Pure; imports nothing of shiftd. The emulator fills the same defaults
into the objects it stores (``shiftd.sim.defaults``), and a real server's agree with them
(``tests/integration/test_emulator_transcripts.py``).
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import orjson

Obj = dict[str, Any]

POD_SPEC_DEFAULTS: Obj = {
    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
    "dnsPolicy": "ClusterFirst", "securityContext": {}, "schedulerName": "default-scheduler",
}
CONTAINER_DEFAULTS: Obj = {
    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
    "resources": {},
}
PROBE_DEFAULTS: Obj = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                       "failureThreshold": 3}
VOLUME_MODE_SOURCES = ("configMap", "secret", "downwardAPI", "projected")
DEFAULT_MODE = 420  # 0644


def image_pull_policy(image: str) -> str:
    """``Always`` for ``:latest`` or an untagged image (without a digest), else
    ``IfNotPresent``, as the API server defaults it."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return "Always" if not tag or tag == "latest" else "IfNotPresent"


def _default_probe(probe: Obj) -> None:
    for key, value in PROBE_DEFAULTS.items():
        probe.setdefault(key, value)
    http = probe.get("httpGet")
    if isinstance(http, dict):
        http.setdefault("scheme", "HTTP")
        http.setdefault("path", "/")


def _default_container(container: Obj) -> None:
    for key, value in CONTAINER_DEFAULTS.items():
        container.setdefault(key, copy.deepcopy(value))
    container.setdefault("imagePullPolicy", image_pull_policy(str(container.get("image", ""))))
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        if isinstance(container.get(name), dict):
            _default_probe(container[name])
    for env in container.get("env") or []:
        field_ref = ((env or {}).get("valueFrom") or {}).get("fieldRef")
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")


def _default_volume(volume: Obj) -> None:
    for source in VOLUME_MODE_SOURCES:
        if isinstance(volume.get(source), dict):
            volume[source].setdefault("defaultMode", DEFAULT_MODE)
    if isinstance(volume.get("hostPath"), dict):
        volume["hostPath"].setdefault("type", "")


def default_pod_spec(spec: Obj) -> None:
    """Fill the API server's PodSpec defaults into ``spec`` in place (idempotent)."""
    for key, value in POD_SPEC_DEFAULTS.items():
        spec.setdefault(key, copy.deepcopy(value))
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(group) or []:
            if isinstance(container, dict):
                _default_container(container)
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict):
            _default_volume(volume)


def default_pod_template(template: Obj) -> Obj:
    """A copy of ``template`` with the API server's defaults filled in (idempotent)."""
    defaulted = copy.deepcopy(template) if isinstance(template, dict) else {}
    metadata = defaulted.setdefault("metadata", {})
    if isinstance(metadata, dict):
        metadata.setdefault("creationTimestamp", None)
    spec = defaulted.setdefault("spec", {})
    if isinstance(spec, dict):
        default_pod_spec(spec)
    return defaulted


def _without_empty(value: Any) -> Any:
    """``value`` with null, empty objects and empty lists removed (Go's semantic equality
    does not tell an absent field from an empty one)."""
    if isinstance(value, dict):
        cleaned = {key: _without_empty(item) for key, item in value.items()}
        return {key: item for key, item in cleaned.items() if item not in (None, {}, [])}
    if isinstance(value, list):
        return [_without_empty(item) for item in value]
    return value


def semantic_form(template: Obj, *, ignore_labels: tuple[str, ...] = ()) -> Any:
    """The form two pod templates are compared in: defaults applied, the given labels
    dropped, empty values ignored."""
    defaulted = default_pod_template(template)
    labels = (defaulted.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        for label in ignore_labels:
            labels.pop(label, None)
    return _without_empty(defaulted)


# Where a cached ReplicaSet's template keeps the digest of its spec's semantic form, in place
# of the spec (``without_spec``): a key no pod template has.
SPEC_DIGEST_KEY = "shiftd.io/spec-digest"


def spec_digest(template: Obj) -> str:
    """A 16-byte BLAKE2b digest (hex) of the semantic form of ``template``'s spec: two
    templates' specs are semantically equal when their digests are."""
    form = semantic_form({"spec": template.get("spec") or {}})
    data = orjson.dumps(form, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def without_spec(template: Obj) -> Obj:
    """``template`` with its spec replaced by ``spec_digest`` (under ``SPEC_DIGEST_KEY``): what
    a cache keeps of a template it only compares (``semantic_equal`` still tells)."""
    if SPEC_DIGEST_KEY in template:
        return template
    kept = {key: value for key, value in template.items() if key != "spec"}
    kept[SPEC_DIGEST_KEY] = spec_digest(template)
    return kept


def semantic_equal(live: Obj, desired: Obj, *, ignore_labels: tuple[str, ...] = ()) -> bool:
    """Whether two templates are semantically equal (``semantic_form``), either of which may
    hold its spec as a digest (``without_spec``)."""
    if SPEC_DIGEST_KEY not in live and SPEC_DIGEST_KEY not in desired:
        return bool(semantic_form(live, ignore_labels=ignore_labels)
                    == semantic_form(desired, ignore_labels=ignore_labels))

    def rest(template: Obj) -> Any:
        return semantic_form({key: value for key, value in template.items()
                              if key not in ("spec", SPEC_DIGEST_KEY)},
                             ignore_labels=ignore_labels)

    def digest(template: Obj) -> str:
        return str(template.get(SPEC_DIGEST_KEY) or spec_digest(template))

    return bool(rest(live) == rest(desired) and digest(live) == digest(desired))
