"""The ``mesh`` section: Istio's objects on a separate API server, and its one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shiftd.cli.daemon import main
from shiftd.config import ConfigError, load_settings, parse_settings


def test_without_a_mesh_section_istio_lives_on_the_main_cluster() -> None:
    mesh = parse_settings({}).mesh
    assert (mesh.kubeconfig, mesh.context, mesh.enabled) == (None, None, False)


def test_a_mesh_kubeconfig_and_context_are_read_with_home_expanded(tmp_path: Path) -> None:
    path = tmp_path / "shiftd.yaml"
    path.write_text("mesh: {kubeconfig: ~/asm.kubeconfig, context: asm-hangzhou}\n")
    mesh = load_settings(path).mesh
    assert mesh.kubeconfig == Path("~/asm.kubeconfig").expanduser()
    assert mesh.context == "asm-hangzhou"
    assert mesh.enabled


def test_a_mesh_context_alone_names_another_context_of_the_default_kubeconfig() -> None:
    mesh = parse_settings({"mesh": {"context": "asm"}}).mesh
    assert (mesh.kubeconfig, mesh.context, mesh.enabled) == (None, "asm", True)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"mesh": {"kubeconfig": ""}}, "mesh.kubeconfig: must be a file's path, not empty"),
        ({"mesh": {"kubeconfig": "  "}}, "mesh.kubeconfig: must be a file's path, not empty"),
        ({"mesh": {"kubeconfig": 5}}, "mesh.kubeconfig: Input is not a valid path"),
        ({"mesh": {"context": ""}}, "mesh.context: String should have at least 1 character"),
        ({"mesh": {"context": 7}}, "mesh.context: Input should be a valid string"),
        ({"mesh": {"kubeConfig": "x"}}, "unknown key: mesh.kubeConfig"),
        ({"mesh": "asm.kubeconfig"}, "mesh: Input should be a valid dictionary"),
    ],
)
def test_a_bad_mesh_value_is_one_line_naming_the_key(data: object, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, source="shiftd.yaml")
    assert str(caught.value).startswith(f"shiftd.yaml: {expected}")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_shiftd_exits_2_naming_the_bad_mesh_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str,
) -> None:
    path = tmp_path / "shiftd.yaml"
    path.write_text("mesh:\n  kubeconfig: ''\n")
    argv = [command, str(path)] if command == "check-config" else [command, "--config",
                                                                     str(path)]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "mesh.kubeconfig" in capsys.readouterr().err


def test_shiftd_run_exits_2_naming_a_mesh_kubeconfig_it_cannot_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    main_kubeconfig = tmp_path / "main.kubeconfig"  # loads; nothing connects before the mesh
    main_kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "main",
        "clusters": [{"name": "main", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "main", "user": {"token": "t"}}],
        "contexts": [{"name": "main", "context": {"cluster": "main", "user": "main"}}]}))
    path = tmp_path / "shiftd.yaml"
    path.write_text(f"kubernetes: {{kubeconfig: {main_kubeconfig}}}\n"
                    f"mesh: {{kubeconfig: {tmp_path / 'missing.kubeconfig'}}}\n"
                    "listen: {port: 0}\nlog: {format: text}\n")
    assert main(["run", "--config", str(path)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"shiftd: {path}: mesh.kubeconfig: cannot load the mesh cluster's")
