"""The canary analysis' metrics as Flagger runs them: queries, templates and thresholds.

Flagger checks each ``analysis.metrics[]`` entry once per interval: the builtin
``request-success-rate`` and ``request-duration`` (for Istio, from Istio's standard telemetry),
an inline ``query``, or a ``templateRef`` to a ``MetricTemplate``. Queries are Go templates over
a small model (``{{ namespace }}``, ``{{ target }}``, ``{{ interval }}``,
``{{ variables.name }}`` ...); :func:`render_template_query` fills them without evaluating
anything, and refuses (as Flagger's ``missingkey=error`` does) what it cannot fill. Flagger's
Prometheus client collapses every run of whitespace to one space before sending a query, so
:func:`builtin_query` returns that collapsed text: byte for byte what Flagger sends.

Verdicts: :func:`within_threshold` is ``thresholdRange`` (min and max inclusive);
:func:`halt_message` adds the deprecated ``threshold`` and Flagger's Event text for a failed
check; :func:`query_failed_message` is the Event when a query returns nothing or fails, and
:func:`metric_checks` the order Flagger runs the checks in (builtin and inline first, then
templates). ``request-duration`` is compared in whole milliseconds, as Flagger truncates both the
value and the bounds to a ``time.Duration`` of milliseconds.

Pure: no I/O. Reading the Secret a template's ``secretRef`` names is the caller's job;
:func:`prometheus_credentials` only interprets its data.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BUILTIN_METRICS",
    "DEFAULT_METRIC_INTERVAL",
    "NO_VALUES_ERROR",
    "MetricCheck",
    "MetricTemplate",
    "MetricTemplateError",
    "MetricTemplateProvider",
    "PrometheusCredentials",
    "QueryTemplateError",
    "builtin_query",
    "collapse_whitespace",
    "halt_message",
    "metric_checks",
    "parse_metric_template",
    "prometheus_credentials",
    "query_failed_message",
    "recorded_value",
    "render_template_query",
    "template_namespace",
    "within_threshold",
]

REQUEST_SUCCESS_RATE = "request-success-rate"
REQUEST_DURATION = "request-duration"
BUILTIN_METRICS = (REQUEST_SUCCESS_RATE, REQUEST_DURATION)
# A metric without ``interval`` is measured over Flagger's default window.
DEFAULT_METRIC_INTERVAL = "1m"

# The provider types Flagger knows; any other type (or none) falls back to Prometheus there.
FLAGGER_PROVIDER_TYPES = frozenset({
    "prometheus", "datadog", "externalmetrics", "cloudwatch", "newrelic", "graphite",
    "stackdriver", "influxdb", "dynatrace", "keptn", "splunk",
})
SUPPORTED_PROVIDER_TYPES = frozenset({"prometheus"})


class QueryTemplateError(ValueError):
    """A query template uses something the model cannot fill (Flagger fails the check too)."""


class MetricTemplateError(ValueError):
    """A MetricTemplate or its provider's credentials cannot be used; the message names why."""


# -- builtin queries ---------------------------------------------------------------------


def _istio_selector(metric: str, *extra: str) -> str:
    matchers = [
        'reporter="destination",',
        'destination_workload_namespace="{{ namespace }}",',
        'destination_workload=~"{{ target }}"' + ("," if extra else ""),
        *extra,
    ]
    return " ".join([f"{metric}{{", *matchers, "}[{{ interval }}]"])


def _istio_queries() -> dict[str, str]:
    """Flagger's Istio queries, token for token (tokens separated by whitespace)."""
    requests = "istio_requests_total"
    good = _istio_selector(requests, 'response_code!~"5.*"')
    every = _istio_selector(requests)
    buckets = _istio_selector("istio_request_duration_milliseconds_bucket")
    return {
        REQUEST_SUCCESS_RATE: f"\n sum( rate( {good} ) ) / sum( rate( {every} ) ) * 100",
        REQUEST_DURATION: f"\n histogram_quantile( 0.99, sum( rate( {buckets} ) ) by (le) )",
    }


def builtin_query(name: str, *, namespace: str, target: str, interval: str) -> str:
    """The PromQL Flagger sends for a builtin Istio metric (``target`` is the workload name,
    i.e. the canary Deployment: ``spec.targetRef.name``)."""
    queries = _istio_queries()
    if name not in queries:
        raise QueryTemplateError(f"{name!r} is not a builtin metric (known: {BUILTIN_METRICS})")
    rendered = render_template_query(
        queries[name], namespace=namespace, target=target, interval=interval, variables={})
    return collapse_whitespace(rendered)


def collapse_whitespace(query: str) -> str:
    """What Flagger's Prometheus client does to every query: each whitespace run → one space."""
    return re.sub(r"\s+", " ", query)


# -- Go-template rendering -----------------------------------------------------------------

_GO_SPACE = " \t\r\n"
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_ACTION = re.compile(rf"({_IDENTIFIER})(?:\.({_IDENTIFIER}))?")


def render_template_query(
    query: str,
    *,
    namespace: str,
    target: str,
    interval: str,
    variables: Mapping[str, str],
    name: str | None = None,
    service: str | None = None,
    ingress: str | None = None,
    route: str | None = None,
) -> str:
    """Fill a MetricTemplate's (or an inline) query as Flagger's ``RenderQuery`` does.

    The model's functions are ``name`` (the Canary), ``namespace``, ``target``, ``service``,
    ``ingress``, ``route``, ``interval`` and ``variables.<key>`` (the metric's
    ``templateVariables``); ``service``, ``ingress`` and ``route`` default to the target, as
    for a Canary without ``service.name``, ``ingressRef`` or ``routeRef``. Go's trim markers
    (``{{-`` and ``-}}``) and comments work; any other action raises QueryTemplateError.
    """
    model = {
        "name": name if name is not None else target,
        "namespace": namespace,
        "target": target,
        "service": service if service is not None else target,
        "ingress": ingress if ingress is not None else target,
        "route": route if route is not None else target,
        "interval": interval,
    }
    out: list[str] = []
    position = 0
    while (start := query.find("{{", position)) >= 0:
        end = query.find("}}", start + 2)
        if end < 0:
            raise QueryTemplateError(f"unclosed action at offset {start}")
        inner = query[start + 2:end]
        text = query[position:start]
        if len(inner) >= 2 and inner[0] == "-" and inner[1] in _GO_SPACE:
            text = text.rstrip(_GO_SPACE)
            inner = inner[2:]
        trim_right = len(inner) >= 2 and inner[-1] == "-" and inner[-2] in _GO_SPACE
        if trim_right:
            inner = inner[:-2]
        out += [text, _evaluate(inner.strip(_GO_SPACE), model, variables)]
        position = end + 2
        if trim_right:
            while position < len(query) and query[position] in _GO_SPACE:
                position += 1
    out.append(query[position:])
    return "".join(out)


def _evaluate(action: str, model: Mapping[str, str], variables: Mapping[str, str]) -> str:
    if action.startswith("/*") and action.endswith("*/"):
        return ""
    match = _ACTION.fullmatch(action)
    if match is None:
        raise QueryTemplateError(f"unsupported template action {{{{ {action} }}}}")
    function, key = match.groups()
    if function == "variables" and key is not None:
        if key not in variables:
            raise QueryTemplateError(f'map has no entry for key "{key}" in {{{{ {action} }}}}')
        return str(variables[key])
    if key is None and function in model:
        return model[function]
    if function in model or function == "variables":
        raise QueryTemplateError(f"unsupported template action {{{{ {action} }}}}")
    raise QueryTemplateError(f'function "{function}" not defined')


# -- thresholds ------------------------------------------------------------------------------


def within_threshold(value: float, threshold_range: Mapping[str, float]) -> bool:
    """``thresholdRange``: ``min`` and ``max`` are each optional and inclusive.

    NaN is never within: Flagger never gets that far with one (its Prometheus client reports
    NaN as "no values found", which halts the advancement).
    """
    if math.isnan(value):
        return False
    low, high = threshold_range.get("min"), threshold_range.get("max")
    return not ((low is not None and value < low) or (high is not None and value > high))


def halt_message(
    *,
    canary: str,
    namespace: str,
    metric: str,
    value: float,
    threshold_range: Mapping[str, float] | None,
    threshold: float = 0.0,
) -> str | None:
    """Flagger's Event for a check that fails, or None when the value passes.

    ``value`` is what the query returned (milliseconds for ``request-duration``). Without a
    ``thresholdRange`` the deprecated ``threshold`` applies: a minimum for the success rate,
    a maximum otherwise.
    """
    subject = f"{canary}.{namespace} advancement"
    if metric == REQUEST_DURATION:
        return _duration_halt(subject, int(value), threshold_range, threshold)
    if metric == REQUEST_SUCCESS_RATE:
        show, unit = f"success rate {value:.2f}%", "%"
    else:
        show, unit = f"{metric} {value:.2f}", ""
    bounds = threshold_range
    if bounds is None:
        bounds = {"min": threshold} if metric == REQUEST_SUCCESS_RATE else {"max": threshold}
    low, high = bounds.get("min"), bounds.get("max")
    if low is not None and value < low:
        return f"Halt {subject} {show} < {_go_float(low)}{unit}"
    if high is not None and value > high:
        return f"Halt {subject} {show} > {_go_float(high)}{unit}"
    return None


def _duration_halt(
    subject: str, millis: int, bounds: Mapping[str, float] | None, threshold: float
) -> str | None:
    # Flagger compares time.Durations: the value and each bound truncated to whole milliseconds.
    low, high = (None, threshold) if bounds is None else (bounds.get("min"), bounds.get("max"))
    shown = _go_duration(millis)
    if low is not None and millis < int(low):
        return f"Halt {subject} request duration {shown} < {_go_duration(int(low))}"
    if high is not None and millis > int(high):
        return f"Halt {subject} request duration {shown} > {_go_duration(int(high))}"
    return None


def _go_float(number: float) -> str:
    """Go's ``%v`` of a float64 for the values thresholds take."""
    number = float(number)  # YAML gives ints too
    if number.is_integer() and abs(number) < 1e21:
        return str(int(number))
    return repr(number)


def _go_duration(millis: int) -> str:
    """Go's ``time.Duration.String`` of a whole number of milliseconds."""
    if millis == 0:
        return "0s"
    sign, millis = ("-" if millis < 0 else ""), abs(millis)
    if millis < 1000:
        return f"{sign}{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, fraction = divmod(rest, 1000)
    text = f"{seconds}" + (f".{fraction:03d}".rstrip("0") if fraction else "") + "s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


# -- MetricTemplate ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricTemplateProvider:
    """``spec.provider`` of a MetricTemplate."""

    type: str  # as written; see effective_type
    address: str
    # Sent with every query, as Go's http.Header: a name to its values.
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # A Secret in the template's namespace: ``token`` (bearer), or ``username`` and ``password``.
    secret_ref: str | None = None
    region: str = ""
    insecure_skip_verify: bool = False

    @property
    def effective_type(self) -> str:
        """The client Flagger builds: an unknown or empty type falls back to Prometheus."""
        return self.type if self.type in FLAGGER_PROVIDER_TYPES else "prometheus"

    @property
    def supported(self) -> bool:
        return self.effective_type in SUPPORTED_PROVIDER_TYPES


@dataclass(frozen=True, slots=True)
class MetricTemplate:
    namespace: str
    name: str
    provider: MetricTemplateProvider
    query: str


def parse_metric_template(obj: Mapping[str, Any]) -> MetricTemplate:
    """A ``flagger.app/v1beta1`` MetricTemplate object, checked as Flagger's client does."""
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    provider = (spec.get("provider") or {}) if isinstance(spec, Mapping) else None
    if not isinstance(provider, Mapping):
        raise MetricTemplateError("spec.provider must be an object")
    kind = str(provider.get("type") or "")
    address = str(provider.get("address") or "")
    parsed = MetricTemplateProvider(
        type=kind,
        address=address,
        headers=_headers(provider.get("headers")),
        secret_ref=_secret_name(provider.get("secretRef")),
        region=str(provider.get("region") or ""),
        insecure_skip_verify=bool(provider.get("insecureSkipVerify", False)),
    )
    if parsed.effective_type == "prometheus" and not address.strip():
        raise MetricTemplateError(  # Flagger's words, then the field
            f"{kind or 'prometheus'} address {address} is not a valid URL (spec.provider.address)")
    return MetricTemplate(
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
        provider=parsed,
        query=str(spec.get("query") or ""),
    )


def _secret_name(raw: Any) -> str | None:
    if not raw:
        return None
    if not isinstance(raw, Mapping):
        raise MetricTemplateError("spec.provider.secretRef must be an object with a name")
    return str(raw.get("name") or "") or None


def _headers(raw: Any) -> dict[str, tuple[str, ...]]:
    if not raw:
        return {}
    if not isinstance(raw, Mapping):
        raise MetricTemplateError("spec.provider.headers must map a name to a list of values")
    return {
        str(name): tuple(str(v) for v in (values if isinstance(values, list) else [values]))
        for name, values in raw.items()
    }


def template_namespace(template_ref: Mapping[str, Any], canary_namespace: str) -> str:
    """Where a ``templateRef`` points: its own namespace if given, else the Canary's."""
    return str(template_ref.get("namespace") or canary_namespace)


@dataclass(frozen=True, slots=True)
class PrometheusCredentials:
    token: str | None = None
    username: str | None = None
    password: str | None = None

    def headers(self) -> dict[str, str]:
        """The Authorization header Flagger sends (bearer token first, else basic auth)."""
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.username and self.password:
            pair = f"{self.username}:{self.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {}


def prometheus_credentials(
    secret_data: Mapping[str, bytes], *, provider_type: str = "prometheus"
) -> PrometheusCredentials:
    """The decoded ``data`` of the Secret ``secretRef`` names, read as Flagger reads it."""
    if "token" in secret_data:
        return PrometheusCredentials(token=secret_data["token"].decode())
    for key in ("username", "password"):
        if key not in secret_data:
            raise MetricTemplateError(f"{provider_type} credentials does not contain a {key}")
    return PrometheusCredentials(
        username=secret_data["username"].decode(), password=secret_data["password"].decode())


# -- the order of checks and the Events of failed queries -----------------------------------

BUILTIN, INLINE, TEMPLATE, UNUSABLE = "builtin", "inline", "template", "unusable"


@dataclass(frozen=True, slots=True)
class MetricCheck:
    """One query Flagger runs for ``analysis.metrics[index]``: a builtin Istio metric, the
    inline ``query``, the ``templateRef``'s, or none usable (which fails the analysis)."""

    kind: str
    index: int
    name: str


def metric_checks(metrics: Sequence[Mapping[str, Any]]) -> list[MetricCheck]:
    """The checks in Flagger's order: first every builtin and inline metric (a builtin name
    with an inline ``query`` runs both), in spec order; then every ``templateRef``, in spec
    order. A metric with neither fails, in the second pass, as Flagger's does."""
    first: list[MetricCheck] = []
    second: list[MetricCheck] = []
    for index, metric in enumerate(metrics):
        name = str(metric.get("name") or "")
        if name in BUILTIN_METRICS:
            first.append(MetricCheck(BUILTIN, index, name))
        if metric.get("query"):
            first.append(MetricCheck(INLINE, index, name))
        if metric.get("templateRef"):
            second.append(MetricCheck(TEMPLATE, index, name))
        elif name not in BUILTIN_METRICS and not metric.get("query"):
            second.append(MetricCheck(UNUSABLE, index, name))
    return first + second


NO_VALUES_ERROR = "no values found"  # Flagger's providers.ErrNoValuesFound


def query_failed_message(
    check: MetricCheck,
    *,
    no_values: bool,
    error: str = NO_VALUES_ERROR,
    mesh_provider: str = "istio",
    target: str = "",
    namespace: str = "",
) -> str:
    """Flagger's Event when a check's query gives nothing (``no_values``: an empty result or
    NaN; a Warning) or fails (an error: Prometheus unreachable, a bad query ...).

    ``target`` and ``namespace`` are the Canary's ``targetRef.name`` and namespace (named in
    the builtin metrics' message); ``mesh_provider`` is Flagger's ``-mesh-provider`` (or the
    Canary's ``spec.provider``).
    """
    if check.kind == BUILTIN:
        if not no_values:
            return f"Prometheus query failed: {error}"
        subject = (f"Halt advancement no values found for {mesh_provider} metric {check.name} "
                   f"probably {target}.{namespace} is not receiving traffic")
        # Flagger appends the error to the success rate's message only.
        return f"{subject}: {error}" if check.name == REQUEST_SUCCESS_RATE else subject
    if check.kind == INLINE:
        if no_values:
            return f"Halt advancement no values found for metric: {check.name}"
        return f"Prometheus query failed for {check.name}: {error}"
    if check.kind == TEMPLATE:
        if no_values:
            return f"Halt advancement no values found for custom metric: {check.name}: {error}"
        return f"Metric query failed for {check.name}: {error}"
    return "Metric query failed for no usable metrics template and query were configured"


def recorded_value(metric: str, value: float) -> float:
    """What ``flagger_canary_metric_analysis`` shows for a value: ``request-duration`` as
    seconds of the whole milliseconds Flagger keeps; any other metric as returned."""
    if metric == REQUEST_DURATION:
        return int(value) / 1000.0
    return value
