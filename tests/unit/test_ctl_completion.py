"""``shiftctl completion`` and ``version``: offline commands that need no cluster.

The bash script is loaded into a real bash and asked to complete, as a user's <Tab> would.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

import shiftd
from shiftd.cli.ctl import build_parser, main
from shiftd.cli.ctl.completion import command_words, completion_script


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "version") == (0, f"shiftctl {shiftd.__version__}\n", "")


def test_the_completion_table_knows_every_command_and_its_flags() -> None:
    table = command_words(build_parser())
    assert {"promote", "abort", "get", "list", "plan", "lint", "status", "completion"} <= set(
        table[""])
    assert "--watch" in table["get rollout"]
    assert "--all-namespaces" in table["list rollouts"]
    assert {"bash", "zsh"} <= set(table["completion"])


def complete(script: str, line: str) -> list[str]:
    words = line.split(" ")
    program = f"""{script}
COMP_WORDS=({' '.join(repr(w) for w in words)})
COMP_CWORD={len(words) - 1}
_shiftctl_complete
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True,
                            check=True, timeout=10)
    return result.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(("line", "expected"), [
    ("shiftctl pro", ["promote"]),
    ("shiftctl get ro", ["ro", "rollout", "rollouts"]),
    ("shiftctl get rollout my-app --wa", ["--watch"]),
    ("shiftctl -n shop plan --st", ["--state"]),
    ("shiftctl completion z", ["zsh"]),
])
def test_bash_completes_commands_and_flags(line: str, expected: list[str]) -> None:
    script = completion_script(build_parser(), shell="bash", program="shiftctl")
    assert complete(script, line) == expected


def test_the_zsh_script_loads_bash_completion_first(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "completion", "zsh")
    assert code == 0
    assert out.startswith("autoload -U +X bashcompinit && bashcompinit\n")
    assert "complete -F _shiftctl_complete shiftctl kubectl-shift" in out
