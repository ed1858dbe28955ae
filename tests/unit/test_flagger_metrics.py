"""Flagger's analysis metrics: builtin Istio queries, Go-template queries, thresholds, templates."""

from __future__ import annotations

import math
from typing import Any

import pytest

from shiftd.decide.flagger.metrics import (
    MetricCheck,
    MetricTemplateError,
    PrometheusCredentials,
    QueryTemplateError,
    builtin_query,
    collapse_whitespace,
    halt_message,
    metric_checks,
    parse_metric_template,
    prometheus_credentials,
    query_failed_message,
    recorded_value,
    render_template_query,
    template_namespace,
    within_threshold,
)

# What Flagger's own tests (pkg/metrics/observers/istio_test.go) expect its Prometheus client
# to send for podinfo in default over 1m.
FLAGGER_SUCCESS_RATE = (
    ' sum( rate( istio_requests_total{ reporter="destination",'
    ' destination_workload_namespace="default", destination_workload=~"podinfo",'
    ' response_code!~"5.*" }[1m] ) ) / sum( rate( istio_requests_total{'
    ' reporter="destination", destination_workload_namespace="default",'
    ' destination_workload=~"podinfo" }[1m] ) ) * 100'
)
FLAGGER_DURATION = (
    ' histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{'
    ' reporter="destination", destination_workload_namespace="default",'
    ' destination_workload=~"podinfo" }[1m] ) ) by (le) )'
)


@pytest.mark.parametrize(("name", "expected"), [
    ("request-success-rate", FLAGGER_SUCCESS_RATE),
    ("request-duration", FLAGGER_DURATION),
])
def test_builtin_istio_queries_are_byte_for_byte_what_flagger_sends(
        name: str, expected: str) -> None:
    query = builtin_query(name, namespace="default", target="podinfo", interval="1m")
    assert query == expected


def test_builtin_queries_fill_namespace_target_and_interval() -> None:
    query = builtin_query("request-duration", namespace="test", target="app", interval="30s")
    assert 'destination_workload_namespace="test"' in query
    assert 'destination_workload=~"app"' in query
    assert "}[30s]" in query


def test_an_unknown_builtin_metric_is_refused() -> None:
    with pytest.raises(QueryTemplateError, match="not a builtin"):
        builtin_query("error-rate", namespace="n", target="t", interval="1m")


def render(query: str, variables: dict[str, str] | None = None, **model: str) -> str:
    return render_template_query(query, namespace="default", target="myapp", interval="1m",
                                 variables=variables or {}, **model)


@pytest.mark.parametrize(("template", "expected"), [
    ('sum(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}_{{ target }}"})',
     'sum(envoy_cluster_upstream_rq{envoy_cluster_name=~"default_myapp"})'),
    ("rate(x[{{interval}}])", "rate(x[1m])"),
    ('up{svc="{{ service }}",i="{{ ingress }}",r="{{ route }}",c="{{ name }}"}',
     'up{svc="myapp",i="myapp",r="myapp",c="myapp"}'),
    ("a {{- target -}} b", "amyappb"),
    ("a {{/* a comment */}}b", "a b"),
    ("no actions at all }}", "no actions at all }}"),
])
def test_templates_are_filled_from_the_model(template: str, expected: str) -> None:
    assert render(template) == expected


def test_service_name_and_route_can_differ_from_the_target() -> None:
    rendered = render("{{ name }}/{{ service }}/{{ ingress }}/{{ route }}",
                      name="canary", service="svc", ingress="ing", route="rt")
    assert rendered == "canary/svc/ing/rt"


def test_template_variables_are_filled_by_key() -> None:
    template = ('delta(max by (consumer_group) (kafka_consumer_current_offset{cluster='
                '"{{ variables.cluster }}", consumer_group="{{ variables.consumer_group }}"}'
                '[{{ interval }}]))')
    rendered = render(template, {"cluster": "dev", "consumer_group": "my_consumer"})
    assert rendered == ('delta(max by (consumer_group) (kafka_consumer_current_offset{cluster='
                        '"dev", consumer_group="my_consumer"}[1m]))')


@pytest.mark.parametrize(("template", "message"), [
    ('x{c="{{ variables.cluster }}"}', 'no entry for key "cluster"'),
    ("{{ secret }}", 'function "secret" not defined'),
    ("{{ variables }}", "unsupported template action"),
    ("{{ namespace.x }}", "unsupported template action"),
    ('{{ printf "%s" target }}', "unsupported template action"),
    ("{{ .Values }}", "unsupported template action"),
    ("{{ target ", "unclosed action"),
])
def test_what_the_model_cannot_fill_is_an_error_not_a_guess(template: str, message: str) -> None:
    with pytest.raises(QueryTemplateError, match=message):
        render(template, {"other": "x"})


def test_whitespace_is_collapsed_as_flaggers_prometheus_client_does() -> None:
    assert collapse_whitespace("sum(\n\t\trate(x[1m])\n)") == "sum( rate(x[1m]) )"


@pytest.mark.parametrize(("value", "bounds", "inside"), [
    (99.0, {"min": 99}, True),
    (98.99, {"min": 99}, False),
    (500.0, {"max": 500}, True),
    (500.1, {"max": 500}, False),
    (5.0, {"min": 1, "max": 10}, True),
    (0.5, {"min": 1, "max": 10}, False),
    (11.0, {"min": 1, "max": 10}, False),
    (-3.0, {}, True),
    (math.nan, {"min": 1}, False),
    (math.nan, {}, False),
])
def test_threshold_range_bounds_are_inclusive(
        value: float, bounds: dict[str, float], inside: bool) -> None:
    assert within_threshold(value, bounds) is inside


@pytest.mark.parametrize(("metric", "value", "bounds", "threshold", "expected"), [
    ("request-success-rate", 98.5, {"min": 99}, 0.0,
     "Halt podinfo.test advancement success rate 98.50% < 99%"),
    ("request-success-rate", 100.0, {"max": 99.5}, 0.0,
     "Halt podinfo.test advancement success rate 100.00% > 99.5%"),
    ("request-success-rate", 99.0, {"min": 99}, 0.0, None),
    ("request-success-rate", 90.0, None, 95.0,
     "Halt podinfo.test advancement success rate 90.00% < 95%"),
    ("request-duration", 612.9, {"max": 500}, 0.0,
     "Halt podinfo.test advancement request duration 612ms > 500ms"),
    ("request-duration", 500.9, {"max": 500}, 0.0, None),  # truncated to 500ms: passes
    ("request-duration", 1500.0, None, 1000.0,
     "Halt podinfo.test advancement request duration 1.5s > 1s"),
    ("request-duration", 61000.0, {"max": 60000}, 0.0,
     "Halt podinfo.test advancement request duration 1m1s > 1m0s"),
    ("request-duration", 5.0, {"min": 10}, 0.0,
     "Halt podinfo.test advancement request duration 5ms < 10ms"),
    ("error-rate", 2.5, {"max": 1}, 0.0,
     "Halt podinfo.test advancement error-rate 2.50 > 1"),
    ("error-rate", 2.5, None, 2.0, "Halt podinfo.test advancement error-rate 2.50 > 2"),
    ("error-rate", 0.5, None, 2.0, None),
])
def test_a_failed_check_halts_with_flaggers_event_text(
        metric: str, value: float, bounds: dict[str, float] | None, threshold: float,
        expected: str | None) -> None:
    message = halt_message(canary="podinfo", namespace="test", metric=metric, value=value,
                           threshold_range=bounds, threshold=threshold)
    assert message == expected


def metric_template(**provider: Any) -> dict[str, Any]:
    return {"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
            "metadata": {"name": "not-found-percentage", "namespace": "istio-system"},
            "spec": {"provider": provider,
                     "query": 'sum(rate(x{ns="{{ namespace }}"}[{{ interval }}]))'}}


def test_a_prometheus_metric_template_is_parsed_with_its_address_and_secret() -> None:
    template = parse_metric_template(metric_template(
        type="prometheus", address="http://prometheus.istio-system:9090",
        secretRef={"name": "prom-auth"}, headers={"X-Scope-OrgID": ["team-a"]}))
    assert (template.namespace, template.name) == ("istio-system", "not-found-percentage")
    assert template.provider.address == "http://prometheus.istio-system:9090"
    assert template.provider.secret_ref == "prom-auth"
    assert template.provider.headers == {"X-Scope-OrgID": ("team-a",)}
    assert template.provider.supported
    assert template.query.startswith("sum(rate(")


@pytest.mark.parametrize(("kind", "effective", "supported"), [
    ("prometheus", "prometheus", True),
    ("", "prometheus", True),            # Flagger falls back to Prometheus
    ("victoria", "prometheus", True),    # ... for any type it does not know
    ("datadog", "datadog", False),       # a provider Flagger has and shiftd has not
])
def test_the_provider_type_falls_back_to_prometheus_as_in_flagger(
        kind: str, effective: str, supported: bool) -> None:
    provider = parse_metric_template(metric_template(type=kind, address="http://p")).provider
    assert (provider.effective_type, provider.supported) == (effective, supported)


def test_a_prometheus_template_without_an_address_is_refused() -> None:
    with pytest.raises(MetricTemplateError, match="address  is not a valid URL"):
        parse_metric_template(metric_template(type="prometheus"))


def test_a_template_ref_defaults_to_the_canarys_namespace() -> None:
    assert template_namespace({"name": "t"}, "test") == "test"
    assert template_namespace({"name": "t", "namespace": "istio-system"}, "test") == "istio-system"


@pytest.mark.parametrize(("data", "expected"), [
    ({"token": b"abc", "username": b"u"}, PrometheusCredentials(token="abc")),
    ({"username": b"u", "password": b"p"}, PrometheusCredentials(username="u", password="p")),
])
def test_credentials_are_a_token_or_a_username_and_password(
        data: dict[str, bytes], expected: PrometheusCredentials) -> None:
    assert prometheus_credentials(data) == expected


def test_credentials_become_flaggers_authorization_header() -> None:
    assert PrometheusCredentials(token="abc").headers() == {"Authorization": "Bearer abc"}
    assert PrometheusCredentials(username="u", password="p").headers() == {
        "Authorization": "Basic dTpw"}


def test_credentials_missing_a_password_are_refused_with_flaggers_message() -> None:
    with pytest.raises(MetricTemplateError,
                       match="prometheus credentials does not contain a password"):
        prometheus_credentials({"username": b"u"})


def test_builtin_and_inline_metrics_are_checked_before_templates_as_in_flagger() -> None:
    metrics: list[dict[str, Any]] = [
        {"name": "not-found", "templateRef": {"name": "nf"}},
        {"name": "request-success-rate", "thresholdRange": {"min": 99}},
        {"name": "custom", "query": "sum(x)"},
        {"name": "request-duration", "query": "histogram_quantile(0.5, y)"},
        {"name": "nothing"},
    ]
    assert metric_checks(metrics) == [
        MetricCheck("builtin", 1, "request-success-rate"),
        MetricCheck("inline", 2, "custom"),
        MetricCheck("builtin", 3, "request-duration"),
        MetricCheck("inline", 3, "request-duration"),
        MetricCheck("template", 0, "not-found"),
        MetricCheck("unusable", 4, "nothing"),
    ]


@pytest.mark.parametrize(("check", "no_values", "expected"), [
    (MetricCheck("builtin", 0, "request-success-rate"), True,
     "Halt advancement no values found for istio metric request-success-rate probably "
     "podinfo.test is not receiving traffic: no values found"),
    (MetricCheck("builtin", 0, "request-duration"), True,
     "Halt advancement no values found for istio metric request-duration probably "
     "podinfo.test is not receiving traffic"),
    (MetricCheck("builtin", 0, "request-duration"), False, "Prometheus query failed: boom"),
    (MetricCheck("inline", 0, "custom"), True,
     "Halt advancement no values found for metric: custom"),
    (MetricCheck("inline", 0, "custom"), False, "Prometheus query failed for custom: boom"),
    (MetricCheck("template", 0, "nf"), True,
     "Halt advancement no values found for custom metric: nf: no values found"),
    (MetricCheck("template", 0, "nf"), False, "Metric query failed for nf: boom"),
    (MetricCheck("unusable", 0, "nothing"), False,
     "Metric query failed for no usable metrics template and query were configured"),
])
def test_a_query_that_finds_nothing_or_fails_is_reported_with_flaggers_text(
        check: MetricCheck, no_values: bool, expected: str) -> None:
    error = "no values found" if no_values else "boom"
    assert query_failed_message(check, no_values=no_values, error=error, target="podinfo",
                                namespace="test") == expected


@pytest.mark.parametrize(("metric", "value", "recorded"), [
    ("request-duration", 612.9, 0.612), ("request-success-rate", 99.5, 99.5),
    ("custom", 0.25, 0.25)])
def test_the_recorded_value_of_request_duration_is_whole_milliseconds_in_seconds(
        metric: str, value: float, recorded: float) -> None:
    assert recorded_value(metric, value) == recorded
