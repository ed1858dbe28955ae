"""The ``flagger.app/v1beta1`` Canary as shiftd reads it: pydantic models of the spec, frozen.

Only what shiftd acts on is typed (targetRef, service, analysis, the switches); every other
field is kept as written (``extra="allow"``), so nothing a Flagger user wrote is refused for
being unknown. Flagger's defaults are applied where Flagger applies them (interval 60 s,
threshold 1 failed check, maxWeight 100, ready thresholds 100 %, progress deadline 600 s,
port name ``http``). ``parse_canary`` turns a validation error into ``InvalidCanaryError``
naming the field, which the controller shows as a Warning Event. No status is written for it
(no phase, no condition; not Failed), as in Flagger: its CRD schema refuses a Canary without
``targetRef`` or ``analysis``, and what its controller's verifyCanary refuses is only logged
("invalid canary spec: ...") and retried, the Canary's status left as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from shiftd.model.durations import parse_duration

DEFAULT_INTERVAL_SECONDS = 60.0
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600
TOTAL_WEIGHT = 100  # Flagger's totalWeight: weights are percentages
FINALIZER = "finalizer.flagger.app"

JsonObject = dict[str, Any]


class InvalidCanaryError(ValueError):
    """A Canary shiftd cannot act on; the message names the field."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True,
                              extra="allow")


class TargetRef(_Model):
    api_version: str = "apps/v1"
    kind: str
    name: str


class CanaryService(_Model):
    """``spec.service``: the ClusterIP Services and the Istio routing."""

    name: str | None = None
    port: int
    target_port: int | str | None = None
    port_name: str = "http"
    app_protocol: str | None = None
    hosts: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()
    match: tuple[JsonObject, ...] = ()
    retries: JsonObject | None = None
    timeout: str | None = None
    headers: JsonObject | None = None
    cors_policy: JsonObject | None = None
    rewrite: JsonObject | None = None
    traffic_policy: JsonObject | None = None
    port_discovery: bool = False
    delegation: bool = False


class MetricRef(_Model):
    name: str
    namespace: str | None = None


class CanaryMetric(_Model):
    """One ``analysis.metrics[]`` entry: a builtin name, a template reference or a query."""

    name: str
    interval: str | None = None
    threshold: float | None = None
    threshold_range: Mapping[str, float] | None = None
    query: str | None = None
    template_ref: MetricRef | None = None
    template_variables: Mapping[str, str] = Field(default_factory=dict)


class CanaryAnalysis(_Model):
    interval: str = "60s"
    threshold: int = 1
    max_weight: int = 0
    step_weight: int = 0
    step_weights: tuple[int, ...] = ()
    step_weight_promotion: int = 0
    iterations: int = 0
    mirror: bool = False
    mirror_weight: int = 0
    match: tuple[JsonObject, ...] = ()
    primary_ready_threshold: int = 100
    canary_ready_threshold: int = 100
    metrics: tuple[CanaryMetric, ...] = ()
    webhooks: tuple[JsonObject, ...] = ()

    @property
    def interval_seconds(self) -> float:
        return parse_duration(self.interval) or DEFAULT_INTERVAL_SECONDS

    @property
    def effective_max_weight(self) -> int:
        """Flagger: the last of ``stepWeights`` when given, else ``maxWeight`` (100 if unset)."""
        if self.step_weights:
            return self.step_weights[-1]
        return self.max_weight or TOTAL_WEIGHT

    @property
    def effective_threshold(self) -> int:
        return self.threshold if self.threshold > 0 else 1


class CanarySpec(_Model):
    target_ref: TargetRef
    service: CanaryService
    analysis: CanaryAnalysis = Field(default_factory=CanaryAnalysis)
    autoscaler_ref: JsonObject | None = None
    provider: str | None = None
    metrics_server: str | None = None
    progress_deadline_seconds: int = DEFAULT_PROGRESS_DEADLINE_SECONDS
    skip_analysis: bool = False
    suspend: bool = False
    revert_on_deletion: bool = False


class Canary(_Model):
    """A Canary: identity, the typed spec, and the status exactly as stored."""

    name: str
    namespace: str
    uid: str
    spec: CanarySpec
    status: JsonObject = Field(default_factory=dict)
    deleting: bool = False  # metadata.deletionTimestamp is set
    finalizers: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        """``name.namespace``, as Flagger names a Canary in its messages."""
        return f"{self.name}.{self.namespace}"

    @property
    def phase(self) -> str:
        return str(self.status.get("phase") or "")


def parse_canary(obj: Mapping[str, Any]) -> Canary:
    """A Canary from its JSON; ``InvalidCanaryError`` naming the first bad field."""
    metadata = obj.get("metadata") or {}
    raw = dict(obj.get("spec") or {})
    if "analysis" not in raw and "canaryAnalysis" in raw:  # v1alpha3's name, still read
        raw["analysis"] = raw.pop("canaryAnalysis")
    try:
        spec = CanarySpec.model_validate(raw)
        _check_durations(spec)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidCanaryError(f"spec.{where}: {first['msg']}") from None
    if spec.provider not in (None, "", "istio"):
        raise InvalidCanaryError(
            f"spec.provider: {spec.provider} is not supported (istio only)")
    if spec.target_ref.kind != "Deployment":
        raise InvalidCanaryError(
            f"spec.targetRef.kind: {spec.target_ref.kind} is not supported (Deployment only)")
    return Canary(name=str(metadata.get("name", "")),
                  namespace=str(metadata.get("namespace", "")),
                  uid=str(metadata.get("uid", "")), spec=spec,
                  status=dict(obj.get("status") or {}),
                  deleting=bool(metadata.get("deletionTimestamp")),
                  finalizers=tuple(metadata.get("finalizers") or ()))


def _check_durations(spec: CanarySpec) -> None:
    try:
        parse_duration(spec.analysis.interval)
    except ValueError as error:
        raise InvalidCanaryError(f"spec.analysis.interval: {error}") from None
