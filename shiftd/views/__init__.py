"""Read models: what a person is shown about Rollouts, as immutable values.

Pure functions build them from the objects as the API returned them; no I/O, no clock (an
import-linter contract forbids both). ``shiftctl get rollout`` / ``list rollouts`` render
text from them, and a web dashboard can render the same values as HTML or JSON.

- ``rollout``: ``RolloutObjects`` (what was read) → ``RolloutTree`` (summary + revisions →
  ReplicaSets → pods, AnalysisRuns beside them) and ``RolloutSummary`` rows for a list.
"""

from shiftd.views.rollout import (
    AnalysisRunNode,
    ImageRoles,
    PodNode,
    Replicas,
    ReplicaSetNode,
    RevisionNode,
    RolloutObjects,
    RolloutSummary,
    RolloutTree,
    owned_objects,
    pod_state,
    replica_set_health,
    rollout_list,
    rollout_summary,
    rollout_tree,
)

__all__ = [
    "AnalysisRunNode",
    "ImageRoles",
    "PodNode",
    "ReplicaSetNode",
    "Replicas",
    "RevisionNode",
    "RolloutObjects",
    "RolloutSummary",
    "RolloutTree",
    "owned_objects",
    "pod_state",
    "replica_set_health",
    "rollout_list",
    "rollout_summary",
    "rollout_tree",
]
