"""An in-process Kubernetes API emulator speaking the real HTTP API, plus a fake kubelet.

Used by the tests and by ``shiftd demo``. It imports nothing else from shiftd.

- ``emulator``: ``ApiEmulator``, the server's lifecycle, connection details and test hooks.
- ``server``: HTTP routes, verbs, patches, watches and discovery on aiohttp.
- ``store``: objects, resourceVersions, write semantics, watch history and watchers.
- ``kinds``: built-in and CRD-defined resource types, discovery documents, the CRD files.
- ``schema``: structural-schema pruning compiled once per CRD version.
- ``patching``: JSON merge, JSON patch and strategic merge patch.
- ``selectors``: label and field selectors.
- ``errors``: ``Status`` error bodies.
- ``kubelet``: ``FakeKubelet``, which makes ReplicaSets' pods "ready".
"""

from shiftd.sim.emulator import ApiEmulator
from shiftd.sim.kinds import default_crd_files, load_crd_documents
from shiftd.sim.kubelet import FakeKubelet
from shiftd.sim.rbac import EmulatedUser
from shiftd.sim.server import LoggedRequest

__all__ = ["ApiEmulator", "EmulatedUser", "FakeKubelet", "LoggedRequest", "default_crd_files",
           "load_crd_documents"]
