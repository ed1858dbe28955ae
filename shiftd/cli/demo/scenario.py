"""What the demo expects and does: the operator's actions and the table of stages.

Each ``Stage`` is an optional ``Action`` (what the human runs: ``kubectl apply``,
``kubectl argo rollouts set image / promote / abort``, sent through ``shiftctl``'s own
functions) and the ``Expect``-ed state it must lead to: phase, step index, the VirtualService
weights as written, replicas per image and the Services' selectors.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from shiftd.cli.ctl import send_operator_patch, set_rollout_image
from shiftd.cli.demo.seed import NAMESPACE, ROLLOUT_NAME, SEED_FILE
from shiftd.cli.demo.snapshot import Snapshot, weights_text
from shiftd.decide.rollout.operator import OperatorPatch, abort_patch, promote_patch
from shiftd.kube.client import KubeClient
from shiftd.kube.resources import ROLLOUT, SERVICE, VIRTUAL_SERVICE

__all__ = [
    "SCENARIO",
    "Abort",
    "Action",
    "ApplySeed",
    "Expect",
    "Promote",
    "Session",
    "SetImage",
    "Stage",
]

Obj = dict[str, Any]

_KINDS = {kind.kind: kind for kind in (ROLLOUT, SERVICE, VIRTUAL_SERVICE)}


@dataclass(frozen=True, slots=True)
class Expect:
    """A state the Rollout must reach. ``replicas`` maps image tags to spec.replicas (every
    replica available); images not named must have none. ``selectors`` maps "stable" and
    "canary" to the image tag whose pod-template hash the Service selects."""

    phase: str
    step: int
    weights: tuple[int, int]  # (stable, canary) as written in the VirtualService route
    replicas: Mapping[str, int]
    selectors: Mapping[str, str]
    paused: bool | None = None  # a pause condition is (not) recorded
    aborted: bool | None = None

    def mismatches(self, snapshot: Snapshot) -> list[str]:
        """What differs, one phrase each ("phase: want Paused, saw Healthy"); [] if it matches."""
        problems = []
        if snapshot.phase != self.phase:
            problems.append(f"phase: want {self.phase}, saw {snapshot.phase}")
        if snapshot.step != self.step:
            problems.append(f"step: want {self.step}/{snapshot.steps}, saw {snapshot.step}")
        seen = (snapshot.stable_weight or 0, snapshot.canary_weight or 0)
        if seen != self.weights or sum(seen) != 100:
            problems.append(f"weights: want stable {self.weights[0]} / canary "
                            f"{self.weights[1]}, saw {weights_text(snapshot)}")
        by_image = snapshot.replicas_by_image()
        for image in sorted(set(by_image) | set(self.replicas)):
            want = self.replicas.get(image, 0)
            replicas, available = by_image.get(image, (0, 0))
            if (replicas, available) != (want, want):
                problems.append(f"replicas of {image}: want {want}/{want} available, "
                                f"saw {available}/{replicas}")
        images = snapshot.selector_images()
        for role, image in self.selectors.items():
            if images.get(role) != image:
                problems.append(f"{role} Service: want it to select {image}, "
                                f"saw {images.get(role)}")
        if self.paused is not None and snapshot.paused != self.paused:
            problems.append(f"pause condition: want {'one' if self.paused else 'none'}, "
                            f"saw {'one' if snapshot.paused else 'none'}")
        if self.aborted is not None and snapshot.aborted != self.aborted:
            problems.append(f"status.abort: want {self.aborted}, saw {snapshot.aborted}")
        return problems

    def describe(self, steps: int) -> str:
        replicas = ", ".join(f"{image} {count}" for image, count in self.replicas.items())
        selectors = " ".join(f"{role}→{image}" for role, image in self.selectors.items())
        return (f"{self.phase}, step {self.step}/{steps}, weights {self.weights[0]}/"
                f"{self.weights[1]}, replicas {replicas}, selectors {selectors}")


class Session(Protocol):
    """What an action may use: the demo's own client and the seed."""

    client: KubeClient
    seed: list[Obj]


class Action(Protocol):
    """One thing the human does; ``run`` returns lines saying exactly what was sent."""

    def describe(self) -> str: ...

    async def run(self, session: Session) -> list[str]: ...


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


@dataclass(frozen=True, slots=True)
class ApplySeed:
    """``kubectl apply -f`` the seed's Services, VirtualService and Rollout."""

    def describe(self) -> str:
        return f"kubectl apply -f {SEED_FILE}"

    async def run(self, session: Session) -> list[str]:
        sent = []
        for document in session.seed:
            kind = _KINDS.get(str(document.get("kind")))
            if kind is None:
                continue
            body = copy.deepcopy(document)
            body["apiVersion"] = kind.api_version  # the version shiftd watches
            await session.client.create(kind, NAMESPACE, body)
            sent.append(f"POST {kind.plural}/{document['metadata']['name']}")
        return sent


@dataclass(frozen=True, slots=True)
class SetImage:
    """``kubectl argo rollouts set image`` (``shiftctl set image``) with the seed image's
    repository and ``tag``: GET the Rollout, edit the container, PUT it back."""

    tag: str
    container: str = ROLLOUT_NAME

    def describe(self) -> str:
        return (f"kubectl argo rollouts set image {ROLLOUT_NAME} "
                f"{self.container}=argoproj/rollouts-demo:{self.tag}")

    async def run(self, session: Session) -> list[str]:
        rollout = await session.client.get(ROLLOUT, NAMESPACE, ROLLOUT_NAME)
        containers = rollout["spec"]["template"]["spec"]["containers"]
        current = next(c["image"] for c in containers if c["name"] == self.container)
        image = f"{current.rpartition(':')[0]}:{self.tag}"
        await set_rollout_image(session.client, namespace=NAMESPACE, name=ROLLOUT_NAME,
                                container=self.container, image=image)
        return [f"PUT rollouts/{ROLLOUT_NAME} (spec.template: {self.container}={image})"]


async def _send(client: KubeClient, patch: OperatorPatch) -> list[str]:
    """Send an operator patch through shiftctl's code, which sends it as the plugin does
    (status first, then spec); returns what it sends."""
    await send_operator_patch(client, namespace=NAMESPACE, name=ROLLOUT_NAME, patch=patch)
    sent = []
    if patch.status is not None:
        sent.append(f"PATCH rollouts/{ROLLOUT_NAME}/status {_json(patch.status)}")
    if patch.spec is not None:
        sent.append(f"PATCH rollouts/{ROLLOUT_NAME} {_json(patch.spec)}")
    return sent


@dataclass(frozen=True, slots=True)
class Promote:
    """``kubectl argo rollouts promote`` (``shiftctl promote``)."""

    def describe(self) -> str:
        return f"kubectl argo rollouts promote {ROLLOUT_NAME}"

    async def run(self, session: Session) -> list[str]:
        rollout = await session.client.get(ROLLOUT, NAMESPACE, ROLLOUT_NAME)
        return await _send(session.client, promote_patch(rollout))


@dataclass(frozen=True, slots=True)
class Abort:
    """``kubectl argo rollouts abort`` (``shiftctl abort``)."""

    def describe(self) -> str:
        return f"kubectl argo rollouts abort {ROLLOUT_NAME}"

    async def run(self, session: Session) -> list[str]:
        return await _send(session.client, abort_patch())


@dataclass(frozen=True, slots=True)
class Stage:
    """Do ``action`` (if any), then expect ``expect`` — no sooner than ``waits`` rollout
    seconds after the previous state (a pause or delay the spec asks for), and within
    ``waits / speed`` plus the demo's slack in wall seconds."""

    title: str
    expect: Expect
    action: Action | None = None
    waits: float = 0.0


def _timed_pause(weight: int) -> Stage:
    return Stage(
        f"pause {{duration: 20s}} passes by itself → setWeight {weight}",
        Expect("Paused", step=weight // 10 * 2 - 1, weights=(100 - weight, weight),
               replicas={"blue": 1, "yellow": 1},
               selectors={"stable": "blue", "canary": "yellow"}, paused=True),
        waits=20,
    )


SCENARIO: tuple[Stage, ...] = (
    Stage("the stable version (blue) comes up: the first rollout goes straight to 100%",
          Expect("Healthy", step=18, weights=(100, 0), replicas={"blue": 1},
                 selectors={"stable": "blue", "canary": "blue"}),
          action=ApplySeed()),
    Stage("image update to yellow: setWeight 10, then the indefinite pause",
          Expect("Paused", step=1, weights=(90, 10), replicas={"blue": 1, "yellow": 1},
                 selectors={"stable": "blue", "canary": "yellow"}, paused=True),
          action=SetImage("yellow")),
    Stage("promoting: the indefinite pause is lifted → setWeight 20",
          Expect("Paused", step=3, weights=(80, 20), replicas={"blue": 1, "yellow": 1},
                 selectors={"stable": "blue", "canary": "yellow"}, paused=True),
          action=Promote()),
    *(_timed_pause(weight) for weight in range(30, 100, 10)),
    Stage("last pause passes: full promotion (yellow is stable, weights 100/0)",
          Expect("Healthy", step=18, weights=(100, 0), replicas={"blue": 1, "yellow": 1},
                 selectors={"stable": "yellow", "canary": "yellow"}, paused=False),
          waits=20),
    Stage("scaleDownDelaySeconds (30s) later the old ReplicaSet (blue) is scaled down",
          Expect("Healthy", step=18, weights=(100, 0), replicas={"yellow": 1},
                 selectors={"stable": "yellow", "canary": "yellow"}),
          waits=30),
    Stage("second update, to orange: setWeight 10, then the indefinite pause",
          Expect("Paused", step=1, weights=(90, 10), replicas={"yellow": 1, "orange": 1},
                 selectors={"stable": "yellow", "canary": "orange"}, paused=True),
          action=SetImage("orange")),
    Stage("aborting: canary weight back to 0 at once, phase Degraded",
          Expect("Degraded", step=0, weights=(100, 0), replicas={"yellow": 1, "orange": 1},
                 selectors={"stable": "yellow", "canary": "yellow"}, aborted=True),
          action=Abort()),
    Stage("abortScaleDownDelaySeconds (30s) later the canary (orange) is scaled down",
          Expect("Degraded", step=0, weights=(100, 0), replicas={"yellow": 1},
                 selectors={"stable": "yellow", "canary": "yellow"}, aborted=True),
          waits=30),
)
