"""Typed, immutable view of an argoproj.io/v1alpha1 Rollout's spec and status.

``parse_rollout`` turns the raw object (as the API returns it) into a ``Rollout``, or raises
``InvalidSpecError`` with a message fit for the InvalidSpec condition. Only what shiftd acts on
is modelled; the raw object stays the source of truth for everything else (the pod template
is kept as the raw dict, because it is copied into ReplicaSets verbatim).

Field comments state invariants, in Argo's manner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

# re-exported: the model's public names stay importable from here
from shiftd.model.argo.fields import (
    POD_TEMPLATE_HASH_LABEL as POD_TEMPLATE_HASH_LABEL,  # noqa: PLC0414
)
from shiftd.model.argo.fields import InvalidSpecError as InvalidSpecError  # noqa: PLC0414
from shiftd.model.argo.fields import PodMetadata as PodMetadata  # noqa: PLC0414
from shiftd.model.argo.fields import (
    bool_field,
    int_field,
    optional_int,
    parse_int_or_percent,
    parse_pod_metadata,
    parse_restart_at,
)
from shiftd.model.argo.fields import (
    resolve_int_or_percent as resolve_int_or_percent,  # noqa: PLC0414
)
from shiftd.model.argo.routes import RouteStep as RouteStep  # noqa: PLC0414
from shiftd.model.argo.routes import (
    SetHeaderRouteStep as SetHeaderRouteStep,  # noqa: PLC0414
)
from shiftd.model.argo.routes import (
    SetMirrorRouteStep as SetMirrorRouteStep,  # noqa: PLC0414
)
from shiftd.model.argo.routes import (
    check_route_steps,
    parse_managed_routes,
    parse_route_step,
)
from shiftd.model.argo.shapes import ROLLOUT_SPEC, check_shape
from shiftd.model.argo.workload import WorkloadRef, resolve_workload
from shiftd.model.durations import parse_duration

DEFAULT_REPLICAS = 1
DEFAULT_REVISION_HISTORY_LIMIT = 10
DEFAULT_SCALE_DOWN_DELAY_SECONDS = 30
DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS = 30
DEFAULT_MAX_SURGE = "25%"
DEFAULT_MAX_UNAVAILABLE = "25%"
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600
MAX_WEIGHT = 100
# The keys of spec.strategy.canary.trafficRouting that name a router shiftd can drive.
SUPPORTED_ROUTERS = ("istio",)

REVISION_ANNOTATION = "rollout.argoproj.io/revision"
MANAGED_BY_ANNOTATION = "argo-rollouts.argoproj.io/managed-by-rollouts"
SCALE_DOWN_DEADLINE_ANNOTATION = "scale-down-deadline"
CONTROLLER_INSTANCE_LABEL = "argo-rollouts.argoproj.io/controller-instance"
# What canaryMetadata / stableMetadata injected into a ReplicaSet's pod template (JSON).
EPHEMERAL_METADATA_ANNOTATION = "rollout.argoproj.io/ephemeral-metadata"


@dataclass(frozen=True, slots=True)
class RolloutDefaults:
    """Timings for Rollouts that leave them unset (the config file's ``defaults``)."""

    scale_down_delay_seconds: int = DEFAULT_SCALE_DOWN_DELAY_SECONDS
    abort_scale_down_delay_seconds: int = DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS
    progress_deadline_seconds: int = DEFAULT_PROGRESS_DEADLINE_SECONDS


@dataclass(frozen=True, slots=True)
class PauseStep:
    duration_seconds: float | None  # None: wait for promotion


@dataclass(frozen=True, slots=True)
class SetWeightStep:
    weight: int  # 0..100


@dataclass(frozen=True, slots=True)
class SetCanaryScaleStep:
    replicas: int | None
    weight: int | None
    match_traffic_weight: bool


@dataclass(frozen=True, slots=True)
class AnalysisStep:
    """A step whose AnalysisRun must succeed; the raw spec is kept for the analysis layer."""

    raw: dict[str, Any]


Step = PauseStep | SetWeightStep | SetCanaryScaleStep | AnalysisStep | RouteStep


@dataclass(frozen=True, slots=True)
class IstioVirtualServiceRef:
    name: str
    namespace: str | None  # "name.namespace" in the spec names another namespace
    routes: tuple[str, ...]  # empty: the VirtualService's only http route
    tls_routes: tuple[dict[str, Any], ...] = ()
    tcp_routes: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class IstioRouting:
    virtual_services: tuple[IstioVirtualServiceRef, ...]
    destination_rule: dict[str, str] | None  # {name, canarySubsetName, stableSubsetName}


@dataclass(frozen=True, slots=True)
class CanaryStrategy:
    canary_service: str | None
    stable_service: str | None
    # The router spec.strategy.canary.trafficRouting names (one of SUPPORTED_ROUTERS); None: a
    # basic canary, where replica counts approximate the weight.
    router: str | None
    istio: IstioRouting | None  # set exactly when router == "istio"
    steps: tuple[Step, ...]
    raw_steps: tuple[dict[str, Any], ...]
    max_surge: int | str
    max_unavailable: int | str
    scale_down_delay_seconds: int
    abort_scale_down_delay_seconds: int
    background_analysis: dict[str, Any] | None  # handled by the analysis layer
    analysis_run_metadata: dict[str, Any] | None = None  # labels/annotations for every run
    # With a router: the stable shrinks as traffic leaves it (and regrows first on abort).
    dynamic_stable_scale: bool = False
    # With a router: a ReplicaSet that has pods has at least this many (capped at replicas).
    min_pods_per_replica_set: int | None = None
    # abortScaleDownDelaySeconds was written in the spec (not a default): Argo treats an
    # explicit delay differently under dynamicStableScale.
    abort_delay_explicit: bool = False
    # How many old ReplicaSets may wait out scaleDownDelaySeconds at once (newest first);
    # None: all of them.
    scale_down_delay_revision_limit: int | None = None
    canary_metadata: PodMetadata | None = None  # on the canary's pods while it is the canary
    stable_metadata: PodMetadata | None = None  # on the stable's pods (the new one's once stable)
    # trafficRouting.managedRoutes: the routes route steps may add, in the order they sit
    # above the user's routes; every setHeaderRoute / setMirrorRoute step names one of them.
    managed_routes: tuple[str, ...] = ()

    @property
    def keeps_canary_on_abort(self) -> bool:
        """``abortScaleDownDelaySeconds: 0`` written out: an aborted canary stays up."""
        return self.abort_delay_explicit and self.abort_scale_down_delay_seconds == 0

    @property
    def traffic_routed(self) -> bool:
        """A router splits the traffic; replica counts no longer have to."""
        return self.router is not None


StrategyName = Literal["canary"]


@dataclass(frozen=True, slots=True)
class Rollout:
    namespace: str
    name: str
    uid: str
    generation: int
    replicas: int
    selector: dict[str, Any]  # a LabelSelector
    template: dict[str, Any]  # the pod template, raw
    min_ready_seconds: int
    revision_history_limit: int
    paused: bool  # spec.paused: a human paused it (ReplicaSets are not scaled meanwhile)
    canary: CanaryStrategy
    status: dict[str, Any] = field(hash=False, compare=False)
    annotations: dict[str, str] = field(hash=False, compare=False)
    # An update that makes no progress for this long is Degraded (ProgressDeadlineExceeded);
    # always more than min_ready_seconds.
    progress_deadline_seconds: int = DEFAULT_PROGRESS_DEADLINE_SECONDS
    progress_deadline_abort: bool = False  # ... and is then aborted
    restart_at: datetime | None = None  # pods created before it are to be restarted
    # spec.workloadRef: the template (and selector) above came from this Deployment
    workload_ref: WorkloadRef | None = None
    # The template's pod-template-hash and the steps' hash (shiftd.decide.rollout.hashing:
    # ``rollout_template_hash``, ``rollout_steps_hash``), when whoever parsed the spec computed
    # them once (the controller does, per generation); "" means computed when asked.
    template_hash: str = field(default="", compare=False)
    steps_hash: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def strategy(self) -> StrategyName:
        """The strategy the planner dispatches on; only canary is parsed (blueGreen is
        InvalidSpec)."""
        return "canary"


def _parse_pause(raw: Any, *, path: str) -> PauseStep:
    if raw is None or raw == {}:
        return PauseStep(duration_seconds=None)
    if not isinstance(raw, dict):
        raise InvalidSpecError(f"{path} must be an object like {{duration: 20s}}")
    duration = raw.get("duration")
    if duration is None:
        return PauseStep(duration_seconds=None)
    try:
        seconds = parse_duration(duration)
    except ValueError as error:
        raise InvalidSpecError(f"{path}.duration: {error}") from None
    return PauseStep(duration_seconds=seconds)


def _parse_step(raw: Any, index: int) -> Step:
    path = f"spec.strategy.canary.steps[{index}]"
    if not isinstance(raw, dict) or len(raw) != 1:
        keys = sorted(raw) if isinstance(raw, dict) else raw
        raise InvalidSpecError(f"{path} must have exactly one of setWeight, pause, setCanaryScale, "
                               f"analysis, setHeaderRoute, setMirrorRoute; got {keys!r}")
    (kind, value), = raw.items()
    if kind == "setWeight":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidSpecError(f"{path}.setWeight must be an integer, got {value!r}")
        if not 0 <= value <= MAX_WEIGHT:
            raise InvalidSpecError(f"{path}.setWeight must be between 0 and 100, got {value}")
        return SetWeightStep(weight=value)
    if kind == "pause":
        return _parse_pause(value, path=f"{path}.pause")
    if kind == "setCanaryScale":
        if not isinstance(value, dict):
            raise InvalidSpecError(f"{path}.setCanaryScale must be an object")
        replicas = value.get("replicas")
        weight = value.get("weight")
        match = bool(value.get("matchTrafficWeight", False))
        if sum(x is not None and x is not False for x in (replicas, weight, match or None)) != 1:
            raise InvalidSpecError(
                f"{path}.setCanaryScale must set exactly one of replicas, weight, "
                "matchTrafficWeight"
            )
        if weight is not None and not (isinstance(weight, int) and 0 <= weight <= MAX_WEIGHT):
            raise InvalidSpecError(f"{path}.setCanaryScale.weight must be between 0 and 100")
        if replicas is not None and not (isinstance(replicas, int) and replicas >= 0):
            raise InvalidSpecError(f"{path}.setCanaryScale.replicas must be a non-negative integer")
        return SetCanaryScaleStep(replicas=replicas, weight=weight, match_traffic_weight=match)
    if kind == "analysis":
        if not isinstance(value, dict):
            raise InvalidSpecError(f"{path}.analysis must be an object")
        return AnalysisStep(raw=value)
    if kind in ("setHeaderRoute", "setMirrorRoute"):
        return parse_route_step(kind, value, path=path)
    unsupported = {"experiment", "plugin"}
    if kind in unsupported:
        raise InvalidSpecError(f"{path}.{kind} steps are not supported by shiftd yet")
    raise InvalidSpecError(f"{path}: unknown step type {kind!r}")


def _parse_virtual_service(raw: Any, *, path: str) -> IstioVirtualServiceRef:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise InvalidSpecError(f"{path}.name is required")
    name, _, namespace = raw["name"].partition(".")
    routes = raw.get("routes") or []
    if not isinstance(routes, list) or not all(isinstance(r, str) for r in routes):
        raise InvalidSpecError(f"{path}.routes must be a list of route names")
    tls = raw.get("tlsRoutes") or []
    tcp = raw.get("tcpRoutes") or []
    return IstioVirtualServiceRef(
        name=name,
        namespace=namespace or None,
        routes=tuple(routes),
        tls_routes=tuple(tls),
        tcp_routes=tuple(tcp),
    )


def _parse_istio(raw: dict[str, Any]) -> IstioRouting:
    path = "spec.strategy.canary.trafficRouting.istio"
    refs: list[IstioVirtualServiceRef] = []
    if raw.get("virtualService") and raw.get("virtualServices"):
        raise InvalidSpecError(f"{path}: set virtualService or virtualServices, not both")
    if raw.get("virtualService"):
        refs.append(_parse_virtual_service(raw["virtualService"], path=f"{path}.virtualService"))
    for index, item in enumerate(raw.get("virtualServices") or []):
        refs.append(_parse_virtual_service(item, path=f"{path}.virtualServices[{index}]"))
    if not refs:
        raise InvalidSpecError(f"{path}.virtualService is required")
    rule = raw.get("destinationRule")
    if rule is not None:
        for key in ("name", "canarySubsetName", "stableSubsetName"):
            if not isinstance(rule.get(key), str) or not rule[key]:
                raise InvalidSpecError(f"{path}.destinationRule.{key} is required")
    return IstioRouting(virtual_services=tuple(refs), destination_rule=rule)


def _parse_traffic_routing(
    routing: dict[str, Any], *, canary_service: str | None, stable_service: str | None
) -> tuple[str, IstioRouting]:
    """The router ``trafficRouting`` names and its spec; other routers are InvalidSpec."""
    path = "spec.strategy.canary"
    other = sorted(k for k in routing if k not in (*SUPPORTED_ROUTERS, "managedRoutes"))
    if other:
        raise InvalidSpecError(f"{path}.trafficRouting.{other[0]} is not supported by shiftd; "
                               "only istio is")
    if "istio" not in routing:
        raise InvalidSpecError(f"{path}.trafficRouting.istio is required")
    istio = _parse_istio(routing["istio"] or {})
    if (not stable_service or not canary_service) and istio.destination_rule is None:
        raise InvalidSpecError(
            f"{path}.canaryService and {path}.stableService are required with Istio "
            "host-level traffic routing"
        )
    return "istio", istio


def _canary_block(spec: dict[str, Any]) -> dict[str, Any]:
    strategy = spec.get("strategy") or {}
    if "blueGreen" in strategy:
        raise InvalidSpecError("spec.strategy.blueGreen is not supported by shiftd yet")
    canary = strategy.get("canary")
    if not isinstance(canary, dict):
        raise InvalidSpecError("spec.strategy.canary is required")
    return canary


def _parse_surge_limits(canary: dict[str, Any], *, path: str) -> tuple[int | str, int | str]:
    max_surge = parse_int_or_percent(canary.get("maxSurge", DEFAULT_MAX_SURGE),
                                      path=f"{path}.maxSurge")
    max_unavailable = parse_int_or_percent(canary.get("maxUnavailable", DEFAULT_MAX_UNAVAILABLE),
                                            path=f"{path}.maxUnavailable")
    if max_surge in (0, "0%") and max_unavailable in (0, "0%"):
        raise InvalidSpecError(f"{path}.maxSurge and {path}.maxUnavailable cannot both be zero")
    return max_surge, max_unavailable


def _parse_dynamic_stable_scale(canary: dict[str, Any], *, routed: bool, path: str) -> bool:
    """dynamicStableScale, refused where Argo's validation refuses it."""
    dynamic = bool_field(canary, "dynamicStableScale", path=path)
    if dynamic and not routed:
        raise InvalidSpecError(
            f"{path}.dynamicStableScale: Canary dynamicStableScale can only be used with "
            "traffic routing")
    if dynamic and canary.get("scaleDownDelaySeconds") is not None:
        raise InvalidSpecError(
            f"{path}.dynamicStableScale: Canary dynamicStableScale cannot be used with "
            "scaleDownDelaySeconds")
    return dynamic


def _parse_canary(spec: dict[str, Any], defaults: RolloutDefaults) -> CanaryStrategy:
    canary = _canary_block(spec)
    path = "spec.strategy.canary"
    canary_service = canary.get("canaryService") or None
    stable_service = canary.get("stableService") or None
    if canary_service and canary_service == stable_service:
        raise InvalidSpecError(
            f"{path}.canaryService and {path}.stableService must differ, both are "
            f"{canary_service!r}"
        )
    router: str | None = None
    istio: IstioRouting | None = None
    if routing := canary.get("trafficRouting"):
        router, istio = _parse_traffic_routing(routing, canary_service=canary_service,
                                               stable_service=stable_service)
    dynamic_stable_scale = _parse_dynamic_stable_scale(canary, routed=router is not None,
                                                       path=path)
    raw_steps = canary.get("steps") or []
    if not isinstance(raw_steps, list):
        raise InvalidSpecError(f"{path}.steps must be a list")
    steps = tuple(_parse_step(step, index) for index, step in enumerate(raw_steps))
    if router is None and any(isinstance(s, SetCanaryScaleStep) for s in steps):
        # as Argo's validation: "SetCanaryScale requires TrafficRouting to be set"
        raise InvalidSpecError(f"{path}.trafficRouting: SetCanaryScale requires TrafficRouting "
                               "to be set")
    managed_routes = parse_managed_routes((canary.get("trafficRouting") or {}).get(
        "managedRoutes"), path=f"{path}.trafficRouting.managedRoutes")
    check_route_steps(steps, managed=managed_routes, routed=router is not None, path=path)
    max_surge, max_unavailable = _parse_surge_limits(canary, path=path)
    return CanaryStrategy(
        canary_service=canary_service,
        stable_service=stable_service,
        router=router,
        istio=istio,
        steps=steps,
        raw_steps=tuple(raw_steps),
        max_surge=max_surge,
        max_unavailable=max_unavailable,
        scale_down_delay_seconds=int_field(
            canary, "scaleDownDelaySeconds", defaults.scale_down_delay_seconds, path=path
        ),
        abort_scale_down_delay_seconds=int_field(
            canary, "abortScaleDownDelaySeconds", defaults.abort_scale_down_delay_seconds,
            path=path,
        ),
        background_analysis=canary.get("analysis"),
        analysis_run_metadata=canary.get("analysisRunMetadata"),
        dynamic_stable_scale=dynamic_stable_scale,
        min_pods_per_replica_set=optional_int(canary, "minPodsPerReplicaSet", path=path),
        abort_delay_explicit=canary.get("abortScaleDownDelaySeconds") is not None,
        scale_down_delay_revision_limit=optional_int(canary, "scaleDownDelayRevisionLimit",
                                                      path=path),
        canary_metadata=parse_pod_metadata(canary.get("canaryMetadata"),
                                            path=f"{path}.canaryMetadata"),
        stable_metadata=parse_pod_metadata(canary.get("stableMetadata"),
                                            path=f"{path}.stableMetadata"),
        managed_routes=managed_routes,
    )


def _selector_matches_template(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    match_labels = selector.get("matchLabels") or {}
    return all(labels.get(key) == value for key, value in match_labels.items())


def parse_rollout(obj: dict[str, Any], defaults: RolloutDefaults | None = None, *,
                  workload: dict[str, Any] | None = None) -> Rollout:
    """Parse and validate a raw Rollout. Raises ``InvalidSpecError`` with a one-line message.

    ``workload`` is the Deployment ``spec.workloadRef`` names, as the caller found it (None:
    not found); the template comes from it."""
    metadata = obj.get("metadata") or {}
    raw_spec = obj.get("spec") or {}
    check_shape(raw_spec, ROLLOUT_SPEC, path="spec")  # a wrong type is InvalidSpec, not a crash
    spec, workload_ref = resolve_workload(raw_spec, workload)
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        raise InvalidSpecError("spec.selector is required and must not be empty")
    template = spec.get("template")
    if not isinstance(template, dict) or not (template.get("spec") or {}).get("containers"):
        raise InvalidSpecError("spec.template.spec.containers is required")
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not _selector_matches_template(selector, labels):
        raise InvalidSpecError("spec.selector does not match spec.template.metadata.labels")
    defaults = defaults or RolloutDefaults()
    canary = _parse_canary(spec, defaults)
    min_ready_seconds = int_field(spec, "minReadySeconds", 0, path="spec")
    progress_deadline = int_field(spec, "progressDeadlineSeconds",
                                  defaults.progress_deadline_seconds, path="spec")
    if progress_deadline <= min_ready_seconds:
        raise InvalidSpecError("spec.progressDeadlineSeconds must be greater than "
                               "minReadySeconds")
    return Rollout(
        namespace=metadata.get("namespace", "default"),
        name=metadata["name"],
        uid=metadata.get("uid", ""),
        generation=int(metadata.get("generation", 1)),
        replicas=int_field(spec, "replicas", DEFAULT_REPLICAS, path="spec"),
        selector=selector,
        template=template,
        min_ready_seconds=min_ready_seconds,
        revision_history_limit=int_field(
            spec, "revisionHistoryLimit", DEFAULT_REVISION_HISTORY_LIMIT, path="spec"
        ),
        paused=bool_field(spec, "paused", path="spec"),
        canary=canary,
        progress_deadline_seconds=progress_deadline,
        progress_deadline_abort=bool_field(spec, "progressDeadlineAbort", path="spec"),
        restart_at=parse_restart_at(spec.get("restartAt")),
        workload_ref=workload_ref,
        status=obj.get("status") or {},
        annotations=metadata.get("annotations") or {},
    )
