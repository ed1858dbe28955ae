"""The ``shiftd`` command: check-config and run refuse bad configuration with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiftd.cli.daemon import main

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "shiftd.yaml"


def test_check_config_accepts_the_documented_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out.strip().endswith(": ok")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("listen:\n  adress: 0.0.0.0\n", "unknown key: listen.adress"),
        ("kubernetes:\n  qps: fast\n", "kubernetes.qps"),
        ("resyncPeriod: soon\n", "resyncPeriod"),
        ("namespaces: [a, a]\n", "namespaces"),
    ],
)
@pytest.mark.parametrize("command", ["check-config", "run"])
def test_a_bad_config_exits_2_with_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, content: str,
    message: str,
) -> None:
    path = tmp_path / "shiftd.yaml"
    path.write_text(content)
    argv = [command, str(path)] if command == "check-config" else [command, "--config",
                                                                     str(path)]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert message in error
    assert "\n" not in error


def test_a_missing_config_file_exits_2(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--config", str(tmp_path / "nope.yaml")])
    assert exit_info.value.code == 2
    assert "file not found" in capsys.readouterr().err
