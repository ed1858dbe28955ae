"""Configuration loading: the documented example, defaults, and one-line errors naming the key."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from shiftd.config import ConfigError, Settings, load_settings, parse_settings
from shiftd.model.durations import parse_duration

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "config" / "shiftd.yaml"
CONFIGMAP = ROOT / "deploy" / "configmap.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shiftd.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_the_documented_example_loads_and_equals_the_defaults() -> None:
    assert load_settings(EXAMPLE) == Settings()


def test_the_deployed_configmap_holds_a_valid_in_cluster_config() -> None:
    configmap = yaml.safe_load(CONFIGMAP.read_text(encoding="utf-8"))
    settings = parse_settings(yaml.safe_load(configmap["data"]["shiftd.yaml"]), source="configmap")
    assert settings.kubernetes.in_cluster is True
    assert settings.listen.address == "0.0.0.0"


def test_an_empty_file_means_all_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "# nothing set\n"))
    assert settings.kubernetes.qps == 50
    assert settings.kubernetes.burst == 100
    assert settings.kubernetes.in_cluster is False
    assert settings.namespaces == ()
    assert settings.instance_id is None
    assert (settings.listen.address, settings.listen.port) == ("127.0.0.1", 8090)
    assert (settings.log.level, settings.log.format) == ("info", "json")
    assert settings.resync_period == 600
    assert settings.defaults.scale_down_delay_seconds == 30
    assert settings.defaults.abort_scale_down_delay_seconds == 30
    assert settings.defaults.progress_deadline_seconds == 600
    assert settings.shutdown_grace_period == 10
    assert settings.workers == 16


def test_every_setting_is_read_from_its_camel_case_key(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            """
kubernetes: {kubeconfig: ~/kube.yaml, context: staging, inCluster: true, qps: 5.5, burst: 7}
namespaces: [shop, payments]
instanceId: blue
listen: {address: 0.0.0.0, port: 9000}
log: {level: DEBUG, format: text}
resyncPeriod: 1h30m
defaults: {scaleDownDelaySeconds: 5, abortScaleDownDelaySeconds: 6, progressDeadlineSeconds: 7}
shutdownGracePeriod: 20
workers: 3
""",
        )
    )
    assert settings.kubernetes.kubeconfig == Path("~/kube.yaml").expanduser()
    assert settings.kubernetes.context == "staging"
    assert settings.kubernetes.in_cluster is True
    assert (settings.kubernetes.qps, settings.kubernetes.burst) == (5.5, 7)
    assert settings.namespaces == ("shop", "payments")
    assert settings.instance_id == "blue"
    assert (settings.listen.address, settings.listen.port) == ("0.0.0.0", 9000)
    assert (settings.log.level, settings.log.format) == ("debug", "text")
    assert settings.resync_period == 5400
    assert settings.defaults.scale_down_delay_seconds == 5
    assert settings.defaults.abort_scale_down_delay_seconds == 6
    assert settings.defaults.progress_deadline_seconds == 7
    assert settings.shutdown_grace_period == 20
    assert settings.workers == 3


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.workers = 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("listen: {adress: 0.0.0.0}", "unknown key: listen.adress"),
        ("workerz: 3", "unknown key: workerz"),
        ("resync_period: 10m", "unknown key: resync_period"),
        ("kubernetes: {qps: fast}", "kubernetes.qps: Input should be a valid number"),
        ("kubernetes: {inCluster: maybe}", "kubernetes.inCluster: Input should be a valid boolean"),
        ("listen: {port: '8090'}", "listen.port: Input should be a valid integer"),
        ("listen: {port: 70000}", "listen.port: Input should be less than or equal to 65535"),
        ("workers: 0", "workers: Input should be greater than or equal to 1"),
        ("log: {format: xml}", "log.format: Input should be 'json' or 'text'"),
        ("log: {level: loud}", "log.level: Input should be 'debug', 'info'"),
        ("namespaces: shop", "namespaces: Input should be a valid tuple"),
        ("namespaces: [shop, shop]", "namespaces: duplicate namespaces: shop"),
        ("instanceId: ''", "instanceId: String should have at least 1 character"),
        ("kubernetes: []", "kubernetes: Input should be a valid dictionary"),
        ("resyncPeriod: 10 minutes", "resyncPeriod: invalid duration '10 minutes'"),
        ("shutdownGracePeriod: 5d", "shutdownGracePeriod: invalid duration '5d': unknown unit 'd'"),
        ("shutdownGracePeriod: -5s", "shutdownGracePeriod: invalid duration '-5s'"),
        ("eventLoop: trio", "eventLoop: Input should be 'auto', 'uvloop' or 'asyncio'"),
        ("- just\n- a list\n", "top level must be a mapping, got list"),
    ],
)
def test_invalid_settings_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in load_error(tmp_path, text)


def test_asking_for_uvloop_where_it_is_not_installed_names_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "uvloop" else real_find_spec(name))
    assert "eventLoop: uvloop is not installed (use auto or asyncio)" in load_error(
        tmp_path, "eventLoop: uvloop")
    assert load_settings(write(tmp_path, "eventLoop: auto")).event_loop == "auto"


def test_several_problems_are_all_reported_on_one_line(tmp_path: Path) -> None:
    message = load_error(tmp_path, "workers: many\nlisten: {adress: x}\n")
    assert "workers: Input should be a valid integer" in message
    assert "unknown key: listen.adress" in message


def test_a_missing_file_is_reported_by_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=f"^file not found: {re.escape(str(missing))}$"):
        load_settings(missing)


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^not a file: "):
        load_settings(tmp_path)


def test_invalid_yaml_is_reported_with_its_line(tmp_path: Path) -> None:
    message = load_error(tmp_path, "listen:\n  address: x\n port: 1\n")
    assert message.startswith("invalid YAML at line 3, column 2: ")


def test_a_duplicated_key_is_an_error_rather_than_a_silent_override(tmp_path: Path) -> None:
    message = load_error(tmp_path, "workers: 2\nworkers: 3\n")
    assert message == "invalid YAML at line 2, column 1: duplicate key 'workers'"


def test_parse_settings_validates_already_parsed_data() -> None:
    assert parse_settings({"workers": 4}).workers == 4
    with pytest.raises(ConfigError, match=r"^inline: unknown key: nope$"):
        parse_settings({"nope": 1}, source="inline")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (30, 30.0),
        (2.5, 2.5),
        ("30", 30.0),
        ("0", 0.0),
        ("20s", 20.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1h30m15s", 5415.0),
        ("1.5h", 5400.0),
        ("500ms", 0.5),
        ("1m0.5s", 60.5),
        (".5s", 0.5),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("1000000ns", 0.001),
        ("+5s", 5.0),
        (" 10s ", 10.0),
    ],
)
def test_durations_parse_to_seconds(value: str | int | float, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("s", "expected seconds or terms"),
        ("10x", "unknown unit 'x'"),
        ("5d", "unknown unit 'd'"),
        ("1h 30m", "expected seconds or terms"),
        ("1.5.5s", "expected seconds or terms"),
        ("-5s", "must not be negative"),
        (-1, "non-negative"),
        (float("nan"), "non-negative"),
        (True, "expected seconds"),
        (None, "got NoneType"),
    ],
)
def test_bad_durations_raise_value_error_naming_the_text(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as caught:
        parse_duration(value)  # type: ignore[arg-type]
    assert reason in str(caught.value)
