"""Reading manifests from files for the offline commands (``plan``, ``lint``).

Every YAML document of every file, ``kind: List`` documents unpacked into their items, each
kept with the file it came from so messages can name it. ``-`` reads standard input.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

from shiftd.cli.ctl.common import Obj, UsageError
from shiftd.cli.ctl.lint import LintInput

__all__ = ["Manifest", "load_manifests"]


# One object and the file it came from: the same value lint takes, so no conversion is needed.
Manifest = LintInput


def _documents(text: str, source: str) -> Iterator[Obj]:
    try:
        documents = list(yaml.load_all(text, Loader=yaml.CSafeLoader))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise UsageError(f"{source}{where}: not valid YAML: {problem}") from None
    for document in documents:
        if document is None:
            continue
        if not isinstance(document, dict):
            raise UsageError(f"{source}: a document is not a Kubernetes object")
        if document.get("kind") == "List" or str(document.get("kind", "")).endswith("List"):
            for item in document.get("items") or []:
                if isinstance(item, dict):
                    yield item
            continue
        yield document


def load_manifests(paths: Sequence[str]) -> list[Manifest]:
    """Every object in ``paths``; ``UsageError`` for a file that cannot be read or parsed."""
    manifests: list[Manifest] = []
    for path in paths:
        if path == "-":
            text = sys.stdin.read()
        else:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as error:
                raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
        manifests.extend(Manifest(path, obj) for obj in _documents(text, path))
    return manifests
