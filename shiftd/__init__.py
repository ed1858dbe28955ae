"""shiftd: an asyncio daemon that runs Argo-compatible canary Rollouts with Istio traffic shifting.

The package is layered (enforced by import-linter, see pyproject.toml):
``cli -> runtime -> (mesh | providers) -> kube -> decide -> model``; ``decide`` and ``model``
do no I/O. ``config``, ``telemetry``, ``logs`` and ``lint`` sit beside the layers. ``sim`` is
the in-process Kubernetes API emulator used by the tests and by ``shiftd demo``; it imports
nothing else from shiftd.
"""

__version__ = "0.1.0"
