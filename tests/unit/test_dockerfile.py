"""The Dockerfile, checked statically (no Docker daemon is needed for the tests): two stages on
one base image pinned to an exact version and given as a build argument, a non-root user, a
read-only-root-friendly runtime, and `shiftd run --config /etc/shiftd/shiftd.yaml`."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def build_args() -> dict[str, str]:
    """ARGs declared before the first FROM, with their defaults."""
    args = {}
    for keyword, rest in instructions():
        if keyword == "FROM":
            break
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
    return args


def test_the_base_image_is_a_build_argument_pinned_to_an_exact_version() -> None:
    image = build_args()["PYTHON_IMAGE"]
    # python:<major>.<minor>.<patch>-slim-<debian release>: never a moving tag.
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-[a-z]+", image), image
    assert [s[0][1].split()[0] for s in stages()] == ["${PYTHON_IMAGE}"] * 2


def test_the_python_of_the_image_is_one_shiftd_supports() -> None:
    minor = int(build_args()["PYTHON_IMAGE"].split(":")[1].split(".")[1])
    required = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    floor = re.search(r'requires-python = ">=3\.(\d+)"', required)
    assert floor is not None
    assert minor >= int(floor.group(1))


def test_the_runtime_stage_copies_only_the_built_virtualenv_and_the_config() -> None:
    build, runtime = stages()
    assert build[0][1].endswith("AS build")
    copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert copies == ["--from=build /opt/shiftd /opt/shiftd",
                      "config/shiftd.yaml /etc/shiftd/shiftd.yaml"]


def test_the_runtime_runs_as_a_non_root_user() -> None:
    runtime = stages()[-1]
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users, "no USER in the runtime stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric, so runAsNonRoot can check it
    keywords = [keyword for keyword, _ in runtime]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")


def test_the_runtime_writes_nothing_outside_tmp() -> None:
    runtime = stages()[-1]
    environment = " ".join(rest for keyword, rest in runtime if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in environment
    assert "HOME=/tmp" in environment
    build = stages()[0]
    assert any("compileall" in rest for keyword, rest in build if keyword == "RUN")


def test_the_command_runs_the_daemon_on_the_mounted_config() -> None:
    runtime = stages()[-1]
    [command] = [rest for keyword, rest in runtime if keyword == "CMD"]
    assert json.loads(command) == ["shiftd", "run", "--config", "/etc/shiftd/shiftd.yaml"]
    assert not [rest for keyword, rest in runtime if keyword == "ENTRYPOINT"]


def ignored(path: str) -> bool:
    patterns = [line.strip() for line in
                (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/")
               for p in patterns)


def test_every_file_the_build_copies_is_in_the_context() -> None:
    for stage in stages():
        for keyword, rest in stage:
            if keyword != "COPY" or rest.startswith("--from"):
                continue
            *sources, _ = shlex.split(rest)
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not ignored(source), f"{source} is excluded by .dockerignore"
