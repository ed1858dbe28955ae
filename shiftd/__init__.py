"""shiftd: an asyncio daemon that runs Argo-compatible canary Rollouts with Istio traffic shifting.

The package is layered (enforced by import-linter, see pyproject.toml):
``cli -> (assembly | sim) -> (controllers | config) -> (runtime | traffic | providers) -> kube
-> views -> decide -> model -> (common | logs)``. ``decide``, ``model`` and ``views`` do no
I/O; ``common`` imports nothing else of shiftd. ``sim`` is the in-process Kubernetes API
emulator used by the tests and by ``shiftd demo``: it imports only ``common``, and nothing of
the daemon imports it.
"""

__version__ = "0.1.0"
