"""Golden files: the exact text ``shiftctl`` prints, checked in.

``assert_golden(name, text)`` compares ``text`` with ``tests/golden/<name>``; run the tests
with ``SHIFTD_UPDATE_GOLDEN=1`` to rewrite the files instead (then review the diff).
"""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parent
UPDATE_ENV = "SHIFTD_UPDATE_GOLDEN"


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN_DIR / name
    if os.environ.get(UPDATE_ENV):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.is_file(), f"no golden file {path}: run with {UPDATE_ENV}=1 to write it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"output differs from {path} (regenerate with {UPDATE_ENV}=1)"
