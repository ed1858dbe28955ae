"""shiftd: an asyncio daemon that runs Argo-compatible canary Rollouts with Istio traffic shifting.

The package is layered (enforced by import-linter, see pyproject.toml):
``cli -> runtime -> (mesh, providers, kube) -> decide -> model``. ``sim`` is the in-process
Kubernetes API emulator used by the tests and by ``shiftd demo``; it imports nothing else.
"""

__version__ = "0.1.0"
