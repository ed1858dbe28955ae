"""Giving the memory a burst freed back to the operating system, once the daemon goes idle.

A burst of due steps replaces most cached objects: the new copies are allocated before the
old ones are freed, so the C allocator's heap grows, and glibc keeps the freed space for
later instead of returning it (RSS stays at the burst's peak for as long as the daemon
runs). ``malloc_trim(0)`` hands the free pages back: the lifecycle calls ``trim_heap`` when
the queues go idle, after the full collection that frees the burst's garbage. Where the C
library has no ``malloc_trim`` (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


def heap_trimmer() -> Callable[[], bool]:
    """A function returning the free heap to the system (``True`` when memory was released);
    a no-op returning ``False`` where the C library has no ``malloc_trim``."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        logger.debug("no malloc_trim in this C library: freed heap stays with the process")
        return lambda: False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def trim_heap() -> bool:
        return bool(trim(0))

    return trim_heap
