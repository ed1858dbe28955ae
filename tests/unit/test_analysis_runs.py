"""Building AnalysisRun specs from a Rollout's analysis blocks, naming runs, collecting old ones."""

from __future__ import annotations

from typing import Any

import pytest

from shiftd.decide.analysis.runs import AnalysisRunView, merge_run_spec, run_name, runs_to_delete
from shiftd.model.argo.rollout import InvalidSpecError

ROLLOUT = {"metadata": {"name": "web", "namespace": "shop",
                        "labels": {"team": "payments"}, "annotations": {"tier": "gold"}}}


def template(name: str, *metrics: str, args: list[dict[str, Any]] | None = None,
             kind: str = "AnalysisTemplate") -> tuple[tuple[str, str], dict[str, Any]]:
    return (kind, name), {"kind": kind, "metadata": {"name": name}, "spec": {
        "args": args or [],
        "metrics": [{"name": m, "successCondition": "result[0] > 0.9",
                     "provider": {"prometheus": {"address": "http://p",
                                                 "query": "up{svc='{{ args.service }}',"
                                                          "ns='{{args.namespace}}'}"}}}
                    for m in metrics]}}


def test_several_templates_merge_into_one_run_with_args_resolved() -> None:
    templates = dict([
        template("rate", "success-rate", args=[{"name": "service"}, {"name": "namespace"}]),
        template("latency", "p99", args=[{"name": "service", "value": "default-svc"}],
                 kind="ClusterAnalysisTemplate"),
    ])
    spec = merge_run_spec(
        {"templates": [{"templateName": "rate"},
                       {"templateName": "latency", "clusterScope": True}],
         "args": [{"name": "service", "value": "web-canary"},
                  {"name": "namespace", "valueFrom": {"fieldRef": {
                      "fieldPath": "metadata.namespace"}}}]},
        templates=templates, rollout_obj=ROLLOUT, path="spec.strategy.canary.analysis")
    assert [m["name"] for m in spec["metrics"]] == ["success-rate", "p99"]
    assert {a["name"]: a["value"] for a in spec["args"]} == {"service": "web-canary",
                                                              "namespace": "shop"}
    assert spec["metrics"][0]["provider"]["prometheus"]["query"] == \
        "up{svc='web-canary',ns='shop'}"


@pytest.mark.parametrize(("path", "expected"), [
    ("metadata.name", "web"), ("metadata.labels['team']", "payments"),
    ("metadata.annotations['tier']", "gold")])
def test_field_refs_read_the_rollout(path: str, expected: str) -> None:
    templates = dict([template("t", "m", args=[{"name": "service"}, {"name": "namespace",
                                                                     "value": "x"}])])
    spec = merge_run_spec({"templates": [{"templateName": "t"}], "args": [
        {"name": "service", "valueFrom": {"fieldRef": {"fieldPath": path}}}]},
        templates=templates, rollout_obj=ROLLOUT, path="p")
    assert {a["name"]: a["value"] for a in spec["args"]}["service"] == expected


@pytest.mark.parametrize(("analysis", "message"), [
    ({"templates": [{"templateName": "missing"}]}, "AnalysisTemplate 'missing' not found"),
    ({"templates": [{"templateName": "t"}]}, "args.service has no value"),
    ({"templates": []}, "templates must name at least one template"),
])
def test_what_cannot_be_built_is_an_invalid_spec_naming_it(analysis: dict[str, Any],
                                                          message: str) -> None:
    templates = dict([template("t", "m", args=[{"name": "service"}, {"name": "namespace",
                                                                     "value": "x"}])])
    with pytest.raises(InvalidSpecError, match=message):
        merge_run_spec(analysis, templates=templates, rollout_obj=ROLLOUT, path="p")


def test_secret_args_stay_references_until_measurement() -> None:
    templates = dict([template("t", "m", args=[{"name": "service"}, {"name": "namespace"}])])
    spec = merge_run_spec({"templates": [{"templateName": "t"}], "args": [
        {"name": "service", "value": "web"},
        {"name": "namespace", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
        templates=templates, rollout_obj=ROLLOUT, path="p")
    assert "{{args.namespace}}" in spec["metrics"][0]["provider"]["prometheus"]["query"]
    assert spec["args"][1]["valueFrom"]["secretKeyRef"] == {"name": "s", "key": "k"}


def test_run_names_follow_argo() -> None:
    assert run_name("web", "abc", 3, None, 0) == "web-abc-3"
    assert run_name("web", "abc", 3, 2, 0) == "web-abc-3-2"
    assert run_name("web", "abc", 3, None, 1) == "web-abc-3.1"


def test_old_runs_beyond_five_successful_and_five_unsuccessful_are_deleted() -> None:
    runs = [AnalysisRunView(name=f"ok-{i}", kind="Background", pod_hash="h", step_index=None,
                            phase="Successful", message="", terminated=True,
                            created=f"2026-01-01T00:00:{i:02d}Z") for i in range(8)]
    runs += [AnalysisRunView(name=f"bad-{i}", kind="Background", pod_hash="h", step_index=None,
                             phase="Failed", message="", terminated=False,
                             created=f"2026-01-01T00:01:{i:02d}Z") for i in range(6)]
    runs.append(AnalysisRunView(name="running", kind="Background", pod_hash="h",
                                step_index=None, phase="Running", message="",
                                terminated=False, created="2026-01-01T00:00:00Z"))
    assert runs_to_delete(runs, keep={"ok-0"}) == ["bad-0", "ok-1", "ok-2"]


def test_a_condition_syntax_error_is_invalid_spec_with_its_position() -> None:
    key, broken = template("t", "m", args=[{"name": "service", "value": "a"},
                                          {"name": "namespace", "value": "b"}])
    broken["spec"]["metrics"][0]["successCondition"] = "result[0] >> 0.9"
    with pytest.raises(InvalidSpecError,
                       match=r"metric 'm' successCondition: unexpected token '>' "
                             r"\(line 1, column 12\)"):
        merge_run_spec({"templates": [{"templateName": "t"}]}, templates={key: broken},
                       rollout_obj=ROLLOUT, path="spec.strategy.canary.analysis")


def test_pod_template_hash_args_and_the_rollouts_own_rules_reach_the_run() -> None:
    from shiftd.decide.rollout.hashing import pod_template_hash  # noqa: PLC0415

    rollout = {**ROLLOUT, "spec": {"template": {"metadata": {"labels": {"app": "web"}},
                                                "spec": {"containers": [{"name": "c"}]}}},
               "status": {"stableRS": "stable1"}}
    templates = dict([template("t", "m", args=[{"name": "service"}, {"name": "namespace"}])])
    spec = merge_run_spec({
        "templates": [{"templateName": "t"}],
        "args": [{"name": "service", "valueFrom": {"podTemplateHashValue": "Latest"}},
                 {"name": "namespace", "valueFrom": {"podTemplateHashValue": "Stable"}}],
        "dryRun": [{"metricName": "m"}],
        "measurementRetention": [{"metricName": "m", "limit": 20}],
    }, templates=templates, rollout_obj=rollout, path="p")
    values = {a["name"]: a["value"] for a in spec["args"]}
    assert values == {"service": pod_template_hash(rollout["spec"]["template"]),
                      "namespace": "stable1"}
    assert spec["dryRun"] == [{"metricName": "m"}]
    assert spec["measurementRetention"] == [{"metricName": "m", "limit": 20}]


def test_consecutive_success_limit_is_refused_rather_than_ignored() -> None:
    key, with_limit = template("t", "m", args=[{"name": "service", "value": "a"},
                                              {"name": "namespace", "value": "b"}])
    with_limit["spec"]["metrics"][0]["consecutiveSuccessLimit"] = 3
    with pytest.raises(InvalidSpecError, match="consecutiveSuccessLimit is not supported"):
        merge_run_spec({"templates": [{"templateName": "t"}]}, templates={key: with_limit},
                       rollout_obj=ROLLOUT, path="p")
