"""deploy/shiftd.service: a Type=notify unit with a watchdog, restarts and hardening, which
systemd itself accepts (``systemd-analyze verify``; skipped where systemd is not installed:
scripts/test installs it when run as root)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "shiftd.service"
ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (apt-get install systemd)")


def directives(section: str) -> dict[str, list[str]]:
    """``Key=value`` lines of one ``[section]`` of the unit, every value of repeated keys."""
    found: dict[str, list[str]] = {}
    current = None
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section and line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_the_unit_waits_for_readiness_and_is_watched() -> None:
    service = directives("Service")
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert service["WatchdogSec"] == ["30s"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_the_unit_restarts_on_failure_but_not_for_a_bad_configuration() -> None:
    service = directives("Service")
    assert service["Restart"] == ["on-failure"]
    assert service["RestartPreventExitStatus"] == ["2"]  # shiftd's exit code for a bad config


def test_the_unit_runs_shiftd_unprivileged_and_hardened() -> None:
    service = directives("Service")
    assert service["User"] == ["shiftd"]
    for setting in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices"):
        assert service[setting] == ["yes"], setting
    assert service["ProtectSystem"] == ["strict"]
    assert service["CapabilityBoundingSet"] == [""]


def installed_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's shiftd, since verify checks that
    the program exists."""
    executable = Path(sys.executable).parent / "shiftd"
    if not executable.exists():
        pytest.skip(f"no shiftd console script beside {sys.executable}")
    path = tmp_path / "shiftd.service"
    path.write_text(UNIT.read_text(encoding="utf-8").replace(
        "/usr/local/bin/shiftd", str(executable)), encoding="utf-8")
    return path


@needs_systemd
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    assert ANALYZE is not None
    result = subprocess.run([ANALYZE, "verify", str(installed_copy(tmp_path))],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # no warning either


@needs_systemd
def test_systemd_rates_the_units_exposure_low(tmp_path: Path) -> None:
    assert ANALYZE is not None
    # --threshold is exposure x10: anything above 2.0 ("OK" ends at 4.9) fails.
    result = subprocess.run(
        [ANALYZE, "security", "--offline=yes", "--threshold=20", "--no-pager",
         str(installed_copy(tmp_path))],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
