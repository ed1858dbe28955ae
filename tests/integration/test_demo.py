"""``shiftd demo`` end to end, in-process: seed 000 through the real daemon on the emulator.

The demo is itself a checked scenario; these tests make sure it passes when shiftd behaves,
and that it really fails (exit 1, a ✘ naming the difference) when a state cannot be reached
or is reached sooner than the Rollout's spec allows.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from shiftd.cli.daemon import main
from shiftd.cli.demo import SCENARIO, DemoError, find_shared_dir, run_demo

pytestmark = pytest.mark.integration

# Fast enough that the 160 s of timed pauses and two 30 s delays take about 2 s.
SPEED = 100.0


async def test_the_demo_reaches_every_state_of_seed_000_with_the_plugins_writes() -> None:
    out = io.StringIO()

    code = await run_demo(SPEED, True, out=out)

    text = out.getvalue()
    assert code == 0, text
    for stage in SCENARIO:
        assert stage.title in text
    assert text.count("✔") == len(SCENARIO)
    assert "✘" not in text
    assert "every state matched" in text
    # exactly what `kubectl argo rollouts` sends
    assert "PUT rollouts/istio-rollout (spec.template: " \
           "istio-rollout=argoproj/rollouts-demo:yellow)" in text
    assert 'PATCH rollouts/istio-rollout/status {"status":{"pauseConditions":null}}' in text
    assert 'PATCH rollouts/istio-rollout/status {"status":{"abort":true}}' in text


async def test_the_demo_exits_1_when_an_expected_state_is_never_reached() -> None:
    first = SCENARIO[0]
    impossible = replace(first, expect=replace(first.expect, phase="Degraded"))
    out = io.StringIO()

    code = await run_demo(SPEED, True, scenario=[impossible, *SCENARIO[1:]], out=out, slack=1.0)

    text = out.getvalue()
    assert code == 1
    assert "✘ not reached within 1.0s" in text
    assert "✘ phase: want Degraded, saw Healthy" in text
    assert SCENARIO[1].title not in text  # the demo stops at the first state it cannot reach
    assert "a state was not reached" in text


async def test_the_demo_exits_1_when_a_state_comes_sooner_than_the_spec_allows() -> None:
    # The image update reaches its first pause at once; claim it should take a minute.
    too_soon = replace(SCENARIO[1], waits=60)
    out = io.StringIO()

    code = await run_demo(SPEED, True, scenario=[SCENARIO[0], too_soon], out=out, slack=2.0)

    text = out.getvalue()
    assert code == 1
    assert "the spec asks for 60s" in text


def test_the_shared_folder_comes_from_shiftd_shared_dir_when_set(tmp_path: Path) -> None:
    (tmp_path / "examples" / "asm-host-split").mkdir(parents=True)

    assert find_shared_dir(environ={"SHIFTD_SHARED_DIR": str(tmp_path)}) == tmp_path


def test_a_shiftd_shared_dir_without_the_seed_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DemoError, match=f"SHIFTD_SHARED_DIR={tmp_path}: no examples/"):
        find_shared_dir(environ={"SHIFTD_SHARED_DIR": str(tmp_path)})


def test_the_shared_folder_is_found_walking_up_from_a_start(tmp_path: Path) -> None:
    (tmp_path / "shared" / "examples" / "asm-host-split").mkdir(parents=True)
    deep = tmp_path / "main" / "shiftd" / "cli"
    deep.mkdir(parents=True)

    assert find_shared_dir(environ={}, starts=[deep]) == tmp_path / "shared"


def test_no_shared_folder_anywhere_is_an_error_saying_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(DemoError, match="set SHIFTD_SHARED_DIR"):
        find_shared_dir(environ={}, starts=[tmp_path])


def test_shiftd_demo_without_the_seed_exits_1_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHIFTD_SHARED_DIR", str(tmp_path))

    assert main(["demo", "--plain"]) == 1

    assert "shiftd demo: SHIFTD_SHARED_DIR=" in capsys.readouterr().err
