"""Which event loop ``shiftd run`` runs on, as ``eventLoop`` in the configuration asks.

uvloop (libuv under asyncio's API) when asked or, for ``auto``, when it is installed; else
asyncio's own loop. Everything shiftd does goes through anyio and asyncio's API, so both run
the same code.
"""

from __future__ import annotations

import asyncio
import importlib.util


def uses_uvloop(choice: str) -> bool:
    """Whether ``eventLoop: <choice>`` runs on uvloop here."""
    return choice == "uvloop" or (
        choice == "auto" and importlib.util.find_spec("uvloop") is not None)


def backend_options(choice: str) -> dict[str, object]:
    """``anyio.run``'s backend options for ``eventLoop: <choice>``."""
    return {"use_uvloop": uses_uvloop(choice)}


def running_loop_name() -> str:
    """``uvloop`` or ``asyncio``: the loop this coroutine runs on."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.split(".")[0] == "uvloop" else "asyncio"
