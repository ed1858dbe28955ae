"""``shiftd demo``: seed 000's canary, driven through the real daemon and checked state by state.

The demo plays a canary update on the embedded API emulator: a ``FakeKubelet`` makes pods
"ready", the real ``Daemon`` reconciles on a ``ScaledClock`` (``--speed`` rollout seconds per
wall second), and the demo acts as the human with ``kubectl argo rollouts``, sending exactly
the plugin's writes through ``shiftctl``'s own functions. Everything it needs ships inside the
package (``manifests/``), so an installed wheel runs it from any directory.

- ``seed``: the packaged manifests (the seed's objects, the emulator's CRDs).
- ``snapshot``: what the demo sees, as one value per distinct state.
- ``scenario``: the operator's actions and the table of expected states (``SCENARIO``).
- ``display``: log lines and the live panel.
- ``play``: starting it all and playing the stages (``run_demo``); exit code 0 only when
  every state was reached in time, and no sooner than the spec's pauses and delays allow.
"""

from shiftd.cli.demo.play import run_demo
from shiftd.cli.demo.scenario import (
    SCENARIO,
    Abort,
    ApplySeed,
    Expect,
    Promote,
    SetImage,
    Stage,
)
from shiftd.cli.demo.seed import DemoError, crd_documents, seed_documents
from shiftd.cli.demo.snapshot import Snapshot, snapshot_of

__all__ = [
    "SCENARIO",
    "Abort",
    "ApplySeed",
    "DemoError",
    "Expect",
    "Promote",
    "SetImage",
    "Snapshot",
    "Stage",
    "crd_documents",
    "run_demo",
    "seed_documents",
    "snapshot_of",
]
