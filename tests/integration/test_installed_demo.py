"""``shiftd demo`` from the built wheel, installed in a fresh virtualenv, run outside the checkout.

This is what a user gets from ``pip install shiftd-*.whl``: no checkout, no ``shared/`` folder,
only what the package ships (the demo's manifests and CRDs are package data).

Kept cheap for CI (a few seconds): the wheel is built from a copy of the sources with the
project's own setuptools (``--no-build-isolation``, so nothing is downloaded), and the fresh
virtualenv gets no pip and no dependencies of its own. ``venv --system-site-packages`` would
not help here: from a virtualenv's python it exposes the *base* interpreter's packages, not
the project's. Instead a ``.pth`` file lists the project virtualenv's site-packages, so the
dependencies are already present and only the wheel is installed (``pip --python``, offline).
The project's own editable ``shiftd`` is not visible through that path: its import hook is
only activated by ``.pth`` processing of a site directory, which a plain path entry skips; the
test checks that ``shiftd`` is imported from the new virtualenv.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[2]
# A guard against a hung child only; the whole test takes seconds.
GUARD_SECONDS = 300


def _run(command: list[str], *, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=GUARD_SECONDS, check=False)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _build_wheel(tmp_path: Path) -> Path:
    """The wheel, built from a copy of the sources (the checkout gets no build/ folder)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPOSITORY / name, source / name)
    shutil.copytree(REPOSITORY / "shiftd", source / "shiftd",
                    ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "--disable-pip-version-check", "--quiet", "--wheel-dir", str(dist),
          str(source)], cwd=tmp_path, env=dict(os.environ))
    [wheel] = dist.glob("shiftd-*.whl")
    return wheel


def _fresh_virtualenv(tmp_path: Path, env: dict[str, str]) -> Path:
    """A virtualenv without pip whose dependencies come from the project's site-packages."""
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                   cwd=tmp_path, env=env).strip()
    (Path(purelib) / "shiftd-test-dependencies.pth").write_text(
        "".join(f"{path}\n" for path in site.getsitepackages()), encoding="utf-8")
    return python


def test_the_installed_wheel_runs_the_demo_from_a_directory_outside_the_checkout(
    tmp_path: Path,
) -> None:
    wheel = _build_wheel(tmp_path)
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV") and not key.startswith("SHIFTD_")}
    python = _fresh_virtualenv(tmp_path, env)
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          "--no-index", "--disable-pip-version-check", "--quiet", str(wheel)],
         cwd=tmp_path, env=env)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    imported = _run([str(python), "-c", "import shiftd; print(shiftd.__file__)"],
                    cwd=elsewhere, env=env)
    output = _run([str(python.parent / "shiftd"), "demo", "--plain", "--speed", "100"],
                  cwd=elsewhere, env=env)

    assert Path(imported.strip()).is_relative_to(tmp_path / "venv")
    assert "every state matched" in output
    assert "✘" not in output
