"""The daemon's typed settings tree, loaded once from YAML and passed explicitly.

``load_settings(path)`` reads a file like ``config/shiftd.yaml`` and returns a frozen
:class:`Settings`; every problem becomes a :class:`ConfigError` whose message is one line naming
the file and the key path (``shiftd.yaml: kubernetes.qps: Input should be a valid number``).

Keys are camelCase in YAML, as in Kubernetes and Argo manifests (``inCluster``,
``resyncPeriod``); the Python attributes are their snake_case forms (``in_cluster``,
``resync_period``). Only the camelCase spelling is accepted in files, and unknown keys are errors,
so a typo never silently falls back to a default. Durations accept integer seconds or Go
duration strings (see :func:`shiftd.model.durations.parse_duration`) and are held as float
seconds.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from shiftd.model.durations import parse_duration

__all__ = [
    "AnalysisSettings",
    "ConfigError",
    "Defaults",
    "KubernetesSettings",
    "ListenSettings",
    "LogSettings",
    "MeshSettings",
    "Settings",
    "load_settings",
    "parse_settings",
]


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line naming the file and key."""


def _to_seconds(value: object) -> float:
    if isinstance(value, str | int | float):
        return parse_duration(value)
    raise ValueError(f"invalid duration {value!r}: expected seconds or a string like '20s'")


Duration = Annotated[float, BeforeValidator(_to_seconds)]
"""Seconds; written in YAML as integer seconds or a Go duration such as ``10m`` or ``1h30m``."""


class _Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
    )


class KubernetesSettings(_Section):
    """How to reach the API server."""

    # None means the kubeconfig default ($KUBECONFIG, then ~/.kube/config).
    kubeconfig: Annotated[Path | None, Field(strict=False)] = None
    # None means the kubeconfig's current-context.
    context: str | None = None
    # Use the pod's service-account token; kubeconfig and context are then ignored.
    in_cluster: bool = False
    # Client-side rate limit for API requests: sustained requests per second, and the burst
    # allowed above it.
    qps: float = Field(default=50.0, gt=0)
    burst: int = Field(default=100, ge=1)
    # Seconds a request (not a watch) may take before it is abandoned as unanswered.
    request_timeout: float = Field(default=30.0, gt=0)

    @field_validator("kubeconfig")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        # Relative paths stay relative to the daemon's working directory.
        return value.expanduser() if value is not None else None


class MeshSettings(_Section):
    """A service mesh whose control plane is another cluster (Alibaba ASM, Flagger's
    ``-kubeconfig-service-mesh``): Istio's VirtualServices and DestinationRules are read,
    watched and written there; everything else stays on ``kubernetes``' API server.
    Unset (neither key), Istio's objects live on the main cluster."""

    # The mesh cluster's kubeconfig; None with a context set means the kubeconfig default.
    kubeconfig: Annotated[Path | None, Field(strict=False)] = None
    # None means that kubeconfig's current-context.
    context: str | None = Field(default=None, min_length=1)

    @field_validator("kubeconfig", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must be a file's path, not empty")
        return value

    @field_validator("kubeconfig")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def enabled(self) -> bool:
        """Whether Istio's objects live on a separate API server."""
        return self.kubeconfig is not None or self.context is not None


class ListenSettings(_Section):
    """Where /metrics, /healthz and /readyz are served."""

    address: str = Field(default="127.0.0.1", min_length=1)
    # 0 picks a free port (useful in tests); the bound port is reported by Telemetry.serve.
    port: int = Field(default=8090, ge=0, le=65535)


LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class LogSettings(_Section):
    """Log output; see :func:`shiftd.logs.configure_logging`."""

    level: LogLevel = "info"
    format: Literal["json", "text"] = "json"

    @field_validator("level", mode="before")
    @classmethod
    def _lowercase_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class Defaults(_Section):
    """Step timings used when a Rollout's spec does not set them (Argo's defaults)."""

    scale_down_delay_seconds: int = Field(default=30, ge=0)
    abort_scale_down_delay_seconds: int = Field(default=30, ge=0)
    progress_deadline_seconds: int = Field(default=600, ge=1)


class AnalysisSettings(_Section):
    """The analysis-polling task and its metric providers."""

    # Prometheus address for AnalysisTemplates that leave provider.prometheus.address out.
    prometheus_address: str | None = Field(default=None, min_length=1)
    # Measurements taken at once, across every AnalysisRun.
    concurrency: int = Field(default=32, ge=1)
    # Deadline of one measurement (provider call, retries of transient failures included).
    measurement_timeout: Duration = Field(default=60.0, gt=0)
    # Deadline of one provider call when the metric sets no timeout of its own.
    provider_timeout: Duration = Field(default=30.0, gt=0)


class LeaderElectionSettings(_Section):
    """Leader election on a coordination.k8s.io/v1 Lease (client-go's defaults): only the
    leader writes; the other replicas keep warm caches and take over when it goes."""

    enabled: bool = False
    lease_name: str = Field(default="shiftd-leader", min_length=1)
    # Where the Lease lives; defaults to the pod's namespace in a cluster, else "default".
    lease_namespace: str | None = Field(default=None, min_length=1)
    # Who this replica is in the Lease; defaults to <hostname>_<random>.
    identity: str | None = Field(default=None, min_length=1)
    lease_duration: Duration = Field(default=15.0, gt=0)
    renew_deadline: Duration = Field(default=10.0, gt=0)
    retry_period: Duration = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _deadlines_in_order(self) -> LeaderElectionSettings:
        # A leader must give up before its lease can be taken, and retry before giving up.
        if self.renew_deadline >= self.lease_duration:
            raise ValueError("renewDeadline must be shorter than leaseDuration")
        if self.retry_period >= self.renew_deadline:
            raise ValueError("retryPeriod must be shorter than renewDeadline")
        return self


class ShardingSettings(_Section):
    """Several daemons splitting the Rollouts: each holds one ``<leasePrefix><i>`` Lease (in
    leaderElection.leaseNamespace, with its timings) and writes only the keys it owns."""

    replicas: int = Field(default=1, ge=1)
    lease_prefix: str = Field(default="shiftd-shard-", min_length=1)


class Settings(_Section):
    """The whole configuration file."""

    kubernetes: KubernetesSettings = KubernetesSettings()
    # Namespaces to watch; empty means all namespaces (one cluster-wide watch per kind).
    namespaces: Annotated[tuple[str, ...], Field(strict=False)] = ()
    # When set, only Rollouts labelled argo-rollouts.argoproj.io/controller-instance=<id> are
    # handled; when unset, only Rollouts without that label (Argo's semantics).
    instance_id: str | None = Field(default=None, min_length=1)
    listen: ListenSettings = ListenSettings()
    log: LogSettings = LogSettings()
    # How often every Rollout is reconciled even when nothing changed.
    resync_period: Duration = Field(default=600.0, gt=0)
    defaults: Defaults = Defaults()
    analysis: AnalysisSettings = AnalysisSettings()
    # How long in-flight reconciles may run after SIGTERM before they are cancelled.
    shutdown_grace_period: Duration = Field(default=10.0, ge=0)
    # Reconciles of different Rollouts that may run at once (one Rollout is always serial).
    workers: int = Field(default=16, ge=1)
    leader_election: LeaderElectionSettings = LeaderElectionSettings()
    sharding: ShardingSettings = ShardingSettings()
    mesh: MeshSettings = MeshSettings()
    # The event loop: "auto" runs on uvloop when it is installed (it is a dependency on
    # Linux; a step costs ~15 % less CPU on it, BENCHMARKS.md), else on asyncio's own.
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"

    @field_validator("event_loop")
    @classmethod
    def _loop_installed(cls, value: str) -> str:
        if value == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ValueError("uvloop is not installed (use auto or asyncio)")
        return value

    @model_validator(mode="after")
    def _one_way_to_share(self) -> Settings:
        if self.sharding.replicas > 1 and self.leader_election.enabled:
            raise ValueError("sharding.replicas > 1 and leaderElection.enabled exclude each "
                             "other: every shard already holds a lease of its own")
        return self

    @field_validator("namespaces")
    @classmethod
    def _distinct_namespaces(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not namespace for namespace in value):
            raise ValueError("namespace names must not be empty")
        duplicates = sorted({ns for ns in value if value.count(ns) > 1})
        if duplicates:
            raise ValueError(f"duplicate namespaces: {', '.join(duplicates)}")
        return value


def parse_settings(data: object, *, source: str = "<config>") -> Settings:
    """Validate already-parsed YAML data; ``source`` prefixes error messages."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(data).__name__}")
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}: {_describe(error)}") from None


def load_settings(path: str | os.PathLike[str]) -> Settings:
    """Read, parse and validate the YAML file at ``path``."""
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"file not found: {source}") from None
    except IsADirectoryError:
        raise ConfigError(f"not a file: {source}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {source}: {_one_line(str(error))}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as error:
        raise ConfigError(f"{source}: {_describe_yaml(error)}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: invalid YAML: {_one_line(str(error))}") from None
    return parse_settings(data, source=source)


def _describe(error: ValidationError) -> str:
    """All of a validation error's problems, on one line, each with its key path."""
    problems = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown key: {location}")
            continue
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{location}: {message}" if location else message)
    return _one_line("; ".join(problems))


def _describe_yaml(error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark or error.context_mark
    problem = error.problem or error.context or "unparseable"
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return _one_line(f"invalid YAML{where}: {problem}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, which plain YAML loading silently overwrites."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
