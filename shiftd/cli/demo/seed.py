"""What the demo starts from: its manifests and CRDs, shipped inside the package.

``manifests/seed-000.yaml`` holds the Services, VirtualService and Rollout the demo applies;
``manifests/crds.yaml`` the CustomResourceDefinitions (minimal structural schemas) the
embedded API emulator serves. Both are package data, so an installed wheel runs the demo
with no checkout beside it.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

__all__ = [
    "HASH_LABEL",
    "MANIFESTS",
    "NAMESPACE",
    "ROLLOUT_NAME",
    "SEED_FILE",
    "DemoError",
    "crd_documents",
    "seed_documents",
]

Obj = dict[str, Any]

NAMESPACE = "default"
ROLLOUT_NAME = "istio-rollout"
HASH_LABEL = "rollouts-pod-template-hash"
MANIFESTS = "manifests"
SEED_FILE = "seed-000.yaml"
CRD_FILE = "crds.yaml"


class DemoError(Exception):
    """The demo cannot start (e.g. its manifests cannot be read)."""


def _documents(name: str) -> list[Obj]:
    resource = resources.files(__package__).joinpath(MANIFESTS, name)
    try:
        text = resource.read_text(encoding="utf-8")
    except OSError as error:
        raise DemoError(f"cannot read the demo's {MANIFESTS}/{name}: {error}") from None
    return [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]


def seed_documents() -> list[Obj]:
    """The seed's Services, VirtualService and Rollout, in the order they are applied."""
    return _documents(SEED_FILE)


def crd_documents() -> list[Obj]:
    """The CRDs the emulator is started with (Argo Rollouts' and Istio's kinds)."""
    documents = [doc for doc in _documents(CRD_FILE)
                 if doc.get("kind") == "CustomResourceDefinition"]
    if not documents:
        raise DemoError(f"no CustomResourceDefinition in the demo's {MANIFESTS}/{CRD_FILE}")
    return documents
