"""deploy/prometheus-rules.yaml: a PrometheusRule whose rules Prometheus' own promtool accepts
(`promtool check rules`) and which fire when they should (`promtool test rules` on made-up
series). Skipped where promtool is missing; scripts/test installs it (Debian's prometheus)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus-rules.yaml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)")


def rule() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return document


def rule_file(tmp_path: Path, *, annotations: bool = True) -> Path:
    """The PrometheusRule's spec is a Prometheus rule file (without the annotations, for
    `promtool test rules`, which would otherwise compare their rendered text)."""
    spec = rule()["spec"]
    if not annotations:
        for group in spec["groups"]:
            for each in group["rules"]:
                each.pop("annotations", None)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *arguments], capture_output=True, text=True, timeout=60,
                          check=False)


def test_the_rules_are_a_prometheus_rule_for_the_operator() -> None:
    document = rule()
    assert document["apiVersion"] == "monitoring.coreos.com/v1"
    assert document["kind"] == "PrometheusRule"
    alerts = {r["alert"] for group in document["spec"]["groups"] for r in group["rules"]}
    assert {"ShiftdNoLeader", "RolloutStuck", "AnalysisRunErroring"} <= alerts


@needs_promtool
def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    result = promtool("check", "rules", str(rule_file(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr


def series(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f'{name}{{job="shiftd",{labels}}}', "values": values}


def fires(alert: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert,
            "exp_alerts": [{"exp_labels": dict(label)} for label in labels]}


UNIT_TESTS: dict[str, Any] = {"tests": [
    {   # Two replicas; the leader goes at minute 5 and nobody takes the Lease.
        "interval": "1m",
        "input_series": [
            series("up", 'pod="a"', "1x20"), series("up", 'pod="b"', "1x20"),
            series("shiftd_leader", 'pod="a"', "1x4 0x15"),
            series("shiftd_leader", 'pod="b"', "0x20"),
        ],
        "alert_rule_test": [
            fires("ShiftdNoLeader", "4m"),
            fires("ShiftdNoLeader", "6m"),  # not yet: for 2m
            fires("ShiftdNoLeader", "8m", {"severity": "critical"}),
            fires("ShiftdDown", "10m"),
            fires("ShiftdSeveralLeaders", "10m"),
        ],
    },
    {   # A Rollout progressing for 40 minutes, another pausing; an AnalysisRun erroring.
        "interval": "1m",
        "input_series": [
            series("rollout_info", 'namespace="shop",name="web",phase="Progressing"', "1x40"),
            series("rollout_info", 'namespace="shop",name="api",phase="Paused"', "1x40"),
            series("analysis_run_metric_phase",
                   'namespace="shop",name="web-1",metric="errors",type="prometheus",'
                   'phase="Error"', "0x2 1x10"),
        ],
        "alert_rule_test": [
            fires("RolloutStuck", "20m"),
            fires("RolloutStuck", "35m", {"severity": "warning", "namespace": "shop",
                                          "name": "web"}),
            fires("AnalysisRunErroring", "5m"),
            fires("AnalysisRunErroring", "9m", {"severity": "warning", "namespace": "shop",
                                                "name": "web-1", "metric": "errors"}),
        ],
    },
]}


@needs_promtool
def test_the_alerts_fire_for_no_leader_a_stuck_rollout_and_an_erroring_analysis(
    tmp_path: Path,
) -> None:
    rules = rule_file(tmp_path, annotations=False)
    tests = tmp_path / "tests.yaml"
    tests.write_text(yaml.safe_dump({"rule_files": [rules.name], "evaluation_interval": "1m",
                                     **UNIT_TESTS}), encoding="utf-8")
    result = promtool("test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_select_the_job_the_service_monitor_scrapes() -> None:
    deploy = RULES.parent
    [monitor] = yaml.safe_load_all((deploy / "servicemonitor.yaml").read_text(encoding="utf-8"))
    service = yaml.safe_load((deploy / "service.yaml").read_text(encoding="utf-8"))
    job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
    expressions = [r["expr"] for group in rule()["spec"]["groups"] for r in group["rules"]]
    jobs = {found for expr in expressions for found in re.findall(r'job="([^"]*)"', expr)}
    assert jobs == {job}
    assert all('job="' in expr for expr in expressions)
