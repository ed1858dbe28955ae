"""An in-process Kubernetes API emulator speaking the real HTTP API, plus a fake kubelet.

Used by the tests and by ``shiftd demo``. It imports nothing else from shiftd. It answers as a
kube-apiserver v1.24 does: ``tests/integration/test_emulator_transcripts.py`` replays the 64
exchanges recorded from a real server (``shared/apiserver-transcripts``) and finds no
difference.

- ``emulator``: ``ApiEmulator``, the server's lifecycle (HTTP or HTTPS), connection details
  (kubeconfigs per user), test hooks.
- ``server``: HTTP routes, verbs, paged lists, patches, server-side apply, discovery (aiohttp).
- ``watching``: watch streams, bookmarks, the 410 of a compacted resourceVersion.
- ``faults``: fault injection (errors, unanswered requests, broken watches), seeded.
- ``store``: objects, resourceVersions, write semantics, watch history and watchers.
- ``admission``: schema, defaults, validation and managedFields between request and store.
- ``kinds``: built-in and CRD-defined resource types, discovery documents, the CRD files.
- ``schema``: structural-schema pruning, defaults and validation, compiled once per version.
- ``defaults``: what the server fills into built-in kinds (pod templates, Services, ...).
- ``validation``: names, immutable pod selectors, the scale subresource's replicas.
- ``managed``: field ownership (managedFields, apply conflicts).
- ``patching``: JSON merge, JSON patch and strategic merge patch.
- ``selectors``: label and field selectors (the real parser's errors).
- ``rbac``: bearer-token users and the RBAC authorizer; ``tls``: the certificate made at start.
- ``errors``: ``Status`` error bodies.
- ``kubelet``: ``FakeKubelet``, which makes ReplicaSets' pods "ready".
- ``deployments``: ``FakeDeployments``, which gives Deployments a ready status.

Where it still differs from a real server, and why that cannot matter to the daemon:

- A continued list (``continue``) reads the current objects after the last key, not the
  first page's snapshot. The informer watches from the first page's resourceVersion, and the
  watch replays every later change in order, so its cache ends at the same state.
- CRD schemas: ``pattern``, ``format``, ``oneOf``/``anyOf``/``allOf``, lengths, item counts
  and CEL rules are not evaluated (types, ``required``, ``enum`` and ranges are). A real server
  rejects more, never less; the daemon writes status fields and route weights, which those
  rules do not constrain.
- managedFields: lists of custom resources are atomic, an apply does not remove the fields a
  manager stops applying, and which built-in fields are maps rather than structs is known
  only for the common ones. The daemon never server-side applies and strips managedFields.
- Deletion: dependents and a namespace's contents go at once, not shortly after by the
  garbage collector; pods have no grace period. The daemon waits on none of them.
- Built-in kinds are those shiftd, its tests and the demo use, each at one version; RBAC
  objects are configuration (``rbac=``), not served resources; no admission plugins run
  (pods get no service account, priority or tolerations); Services get cluster IPs, not
  endpoints. Bookmarks come every ``bookmark_interval`` seconds (a real server: about once a
  minute); the daemon takes them whenever they come.
"""

from shiftd.sim.deployments import FakeDeployments
from shiftd.sim.emulator import ApiEmulator
from shiftd.sim.faults import FaultInjector, RequestFaults, WatchFaults
from shiftd.sim.kinds import default_crd_files, flagger_crd_files, load_crd_documents
from shiftd.sim.kubelet import FakeKubelet
from shiftd.sim.rbac import EmulatedUser
from shiftd.sim.server import LoggedRequest

__all__ = ["ApiEmulator", "EmulatedUser", "FakeDeployments", "FakeKubelet", "FaultInjector",
           "LoggedRequest", "RequestFaults", "WatchFaults", "default_crd_files",
           "flagger_crd_files", "load_crd_documents"]
