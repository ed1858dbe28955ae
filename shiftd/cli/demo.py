"""``shiftd demo``: seed 000's canary, driven through the real daemon and checked state by state.

The demo is the seed's guide (Alibaba ASM + Argo Rollouts, ``shared/examples/asm-host-split``)
played on the embedded API emulator: a ``FakeKubelet`` makes pods "ready", the real ``Daemon``
reconciles on a ``ScaledClock`` (``--speed`` rollout seconds per wall second), and the demo
acts as the human with ``kubectl argo rollouts``, sending exactly the plugin's writes through
``shiftctl``'s own functions (patches from ``shiftd.decide.rollout.operator``).

The scenario is a table (``SCENARIO``): each ``Stage`` is an optional operator ``Action`` and
the ``Expect``-ed state it must lead to within a deadline — phase, step index, the
VirtualService weights as written, replicas per image and the Services' selectors. The demo
watches the objects with informers and records every distinct ``Snapshot`` it sees, so a
state that lasts only a moment still counts; each stage prints ✔ or ✘, and the exit code is 0
only when every state was reached in time (and no sooner than the spec's pauses and delays
allow).

On a terminal the live state is redrawn in place under the log; with ``--plain`` or when
output is not a terminal every change is one more line.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TextIO

import anyio
import orjson
import yaml
from kubernetes_asyncio.client import ApiClient

from shiftd.assembly import Daemon
from shiftd.cli.ctl import CommandError, send_operator_patch, set_rollout_image
from shiftd.config import parse_settings
from shiftd.decide.rollout.observed import parse_time
from shiftd.decide.rollout.operator import OperatorPatch, abort_patch, promote_patch
from shiftd.kube.client import KubeClient
from shiftd.kube.errors import KubeError
from shiftd.kube.informer import Informer
from shiftd.kube.resources import EVENT, REPLICA_SET, ROLLOUT, SERVICE, VIRTUAL_SERVICE
from shiftd.model.durations import parse_duration
from shiftd.runtime.clock import ScaledClock
from shiftd.sim import ApiEmulator, FakeKubelet, load_crd_documents

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
    "find_shared_dir",
    "run_demo",
    "snapshot_of",
]

Obj = dict[str, Any]

NAMESPACE = "default"
ROLLOUT_NAME = "istio-rollout"
SEED_FOLDER = Path("examples") / "asm-host-split"
SEED_FILES = ("services.yaml", "virtualservice.yaml", "rollout.yaml")
HASH_LABEL = "rollouts-pod-template-hash"
_KINDS = {kind.kind: kind for kind in (ROLLOUT, SERVICE, VIRTUAL_SERVICE)}
_CRD_FOLDERS = ("argo-rollouts", "istio")
# Wall seconds the fake pods take to become ready, in rollout seconds (divided by --speed).
_READY_AFTER = 2.0
# How late, in wall seconds, the demo may observe a change the daemon made (times --speed in
# rollout seconds): a state reached after a pause or delay may seem that much early. The
# allowance never exceeds half the wait, so a daemon that skips a wait is always caught.
_OBSERVATION_LAG = 0.25


class DemoError(Exception):
    """The demo cannot start (e.g. the seed's manifests are not found)."""


# --- finding the seed ------------------------------------------------------------------------

def find_shared_dir(
    *, environ: Mapping[str, str] | None = None, starts: Sequence[Path] | None = None
) -> Path:
    """The ``shared`` folder holding ``examples/asm-host-split`` and ``crds``.

    ``$SHIFTD_SHARED_DIR`` if set; else the first ``shared`` folder found walking up from this
    package, then from the working directory. Raises ``DemoError`` saying where it looked.
    """
    environ = os.environ if environ is None else environ
    configured = environ.get("SHIFTD_SHARED_DIR")
    if configured:
        shared = Path(configured)
        if not (shared / SEED_FOLDER).is_dir():
            raise DemoError(f"SHIFTD_SHARED_DIR={configured}: no {SEED_FOLDER} in it")
        return shared
    if starts is None:
        starts = (Path(__file__).resolve().parent, Path.cwd().resolve())
    for start in starts:
        for directory in (start, *start.parents):
            if (directory / "shared" / SEED_FOLDER).is_dir():
                return directory / "shared"
    raise DemoError(
        f"cannot find shared/{SEED_FOLDER} above {' or '.join(map(str, starts))}; "
        "set SHIFTD_SHARED_DIR to the folder that holds examples/ and crds/"
    )


def _seed_documents(shared: Path) -> list[Obj]:
    documents: list[Obj] = []
    for name in SEED_FILES:
        path = shared / SEED_FOLDER / name
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise DemoError(f"cannot read {path}: {error}") from None
        documents.extend(doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict))
    return documents


def _crd_files(shared: Path) -> list[Path]:
    files = sorted(path for folder in _CRD_FOLDERS
                   for path in (shared / "crds" / folder).glob("*-crd.yaml"))
    if not files:
        raise DemoError(f"no CRDs in {shared / 'crds'} ({', '.join(_CRD_FOLDERS)})")
    return files


# --- what the demo sees ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ReplicaSetState:
    name: str
    pod_hash: str
    image: str  # the image's tag: "blue", "yellow", ...
    replicas: int  # spec.replicas
    available: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state the demo shows and checks, from the objects as the API returned them."""

    phase: str | None = None
    message: str = ""
    step: int | None = None  # status.currentStepIndex
    steps: int = 0
    step_text: str = ""  # the current step, as in the spec
    paused: bool = False  # a pause condition is recorded
    pause_ends: datetime | None = None  # when a timed pause resumes by itself
    aborted: bool = False
    # The VirtualService route as written: (host, weight or None when the field is absent).
    route: tuple[tuple[str, int | None], ...] = ()
    stable_weight: int | None = None
    canary_weight: int | None = None
    replica_sets: tuple[ReplicaSetState, ...] = ()
    # (role, Service name, rollouts-pod-template-hash in its selector or None)
    selectors: tuple[tuple[str, str, str | None], ...] = ()

    def image_of(self, pod_hash: str | None) -> str | None:
        for rs in self.replica_sets:
            if rs.pod_hash == pod_hash:
                return rs.image
        return None

    def replicas_by_image(self) -> dict[str, tuple[int, int]]:
        result: dict[str, tuple[int, int]] = {}
        for rs in self.replica_sets:
            replicas, available = result.get(rs.image, (0, 0))
            result[rs.image] = (replicas + rs.replicas, available + rs.available)
        return result

    def selector_images(self) -> dict[str, str | None]:
        return {role: self.image_of(pod_hash) for role, _, pod_hash in self.selectors}


def _tag(image: str) -> str:
    return image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else image


def _describe_step(step: object) -> str:
    if not isinstance(step, dict):
        return ""
    if "setWeight" in step:
        return f"setWeight: {step['setWeight']}"
    if "pause" in step:
        duration = (step.get("pause") or {}).get("duration")
        return f"pause: {{duration: {duration}}}" if duration is not None else "pause: {}"
    return ", ".join(step)


def _pause_end(step: object, conditions: list[Obj]) -> datetime | None:
    if not conditions or not isinstance(step, dict) or "pause" not in step:
        return None
    duration = (step.get("pause") or {}).get("duration")
    started = parse_time(str(conditions[0].get("startTime") or ""))
    if duration is None or started is None:
        return None
    try:
        seconds = parse_duration(duration)
    except ValueError:
        return None
    return started + timedelta(seconds=seconds)


def _route(rollout: Obj, virtual_service: Obj | None) -> list[Obj]:
    """The http route the Rollout names (its first), or the only one."""
    if virtual_service is None:
        return []
    istio = (((rollout.get("spec") or {}).get("strategy") or {}).get("canary") or {}).get(
        "trafficRouting", {}).get("istio") or {}
    names = (istio.get("virtualService") or {}).get("routes") or []
    http = (virtual_service.get("spec") or {}).get("http") or []
    for route in http:
        if not names or route.get("name") == names[0]:
            return list(route.get("route") or [])
    return []


def snapshot_of(
    rollout: Obj | None,
    virtual_service: Obj | None,
    replica_sets: Sequence[Obj],
    services: Mapping[str, Obj | None],
) -> Snapshot:
    """What the demo shows, from the Rollout, its VirtualService, ReplicaSets and Services."""
    if rollout is None:
        return Snapshot()
    spec, status = rollout.get("spec") or {}, rollout.get("status") or {}
    canary = (spec.get("strategy") or {}).get("canary") or {}
    steps = list(canary.get("steps") or [])
    index = status.get("currentStepIndex")
    step = steps[index] if isinstance(index, int) and 0 <= index < len(steps) else None
    conditions = list(status.get("pauseConditions") or [])

    route = tuple((str((entry.get("destination") or {}).get("host", "")), entry.get("weight"))
                  for entry in _route(rollout, virtual_service))
    roles = {"stable": canary.get("stableService"), "canary": canary.get("canaryService")}
    weights: dict[str, int | None] = {}
    for host, weight in route:
        for role, service in roles.items():
            if service and host.split(".")[0] == service:
                weights[role] = weight

    sets = []
    for rs in replica_sets:
        metadata, rs_spec = rs.get("metadata") or {}, rs.get("spec") or {}
        containers = ((rs_spec.get("template") or {}).get("spec") or {}).get("containers") or []
        sets.append(ReplicaSetState(
            name=str(metadata.get("name", "")),
            pod_hash=str((metadata.get("labels") or {}).get(HASH_LABEL, "")),
            image=_tag(str(containers[0].get("image", ""))) if containers else "",
            replicas=int(rs_spec.get("replicas") or 0),
            available=int((rs.get("status") or {}).get("availableReplicas") or 0),
        ))
    selectors = []
    for role, name in roles.items():
        if name:
            service = services.get(name) or {}
            selector = (service.get("spec") or {}).get("selector") or {}
            selectors.append((role, str(name), selector.get(HASH_LABEL)))

    return Snapshot(
        phase=status.get("phase"),
        message=str(status.get("message") or ""),
        step=index if isinstance(index, int) else None,
        steps=len(steps),
        step_text=_describe_step(step),
        paused=bool(conditions),
        pause_ends=_pause_end(step, conditions),
        aborted=bool(status.get("abort")),
        route=route,
        stable_weight=weights.get("stable"),
        canary_weight=weights.get("canary"),
        replica_sets=tuple(sorted(sets, key=lambda rs: rs.name)),
        selectors=tuple(selectors),
    )


@dataclass(frozen=True, slots=True)
class Observation:
    snapshot: Snapshot
    at: datetime  # rollout time (the daemon's clock)
    wall: float  # seconds since the demo started


# --- what the demo expects -------------------------------------------------------------------

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
                            f"{self.weights[1]}, saw {_weights_text(snapshot)}")
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


# --- what the demo does ----------------------------------------------------------------------

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
        return "kubectl apply -f " + " -f ".join(SEED_FILES)

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


# --- the scenario ----------------------------------------------------------------------------

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


# --- showing it ------------------------------------------------------------------------------

_GREEN, _RED, _DIM, _BOLD, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[2m", "\x1b[1m", "\x1b[0m"


def _weights_text(snapshot: Snapshot) -> str:
    def weight(value: int | None) -> str:
        return "-" if value is None else str(value)

    return f"stable {weight(snapshot.stable_weight)} / canary {weight(snapshot.canary_weight)}"


def _state_lines(snapshot: Snapshot, *, now: datetime | None) -> list[str]:
    """The live panel: Rollout, VirtualService route, ReplicaSets, Services."""
    step = f"step {snapshot.step}/{snapshot.steps}" if snapshot.step is not None else "step -"
    current = f" ({snapshot.step_text})" if snapshot.step_text else ""
    if snapshot.pause_ends is not None and now is not None:
        left = max(0.0, (snapshot.pause_ends - now).total_seconds())
        current += f", {left:.0f}s left"
    lines = [f"  Rollout {ROLLOUT_NAME}: {snapshot.phase or '-'}, {step}{current}"]
    if snapshot.message:
        lines.append(f"    {snapshot.message}")
    lines.append("  VirtualService weights: " + (", ".join(
        f"{host} {'-' if weight is None else weight}" for host, weight in snapshot.route)
        or "-"))
    width = max((len(rs.name) for rs in snapshot.replica_sets), default=0)
    lines.extend(f"  ReplicaSet {rs.name:<{width}}  {rs.image:<8} {rs.available}/{rs.replicas}"
                 " available" for rs in snapshot.replica_sets)
    lines.extend(f"  Service {name} selects {pod_hash or '(no hash)'}"
                 f"{f' ({snapshot.image_of(pod_hash)})' if pod_hash else ''}"
                 for _, name, pod_hash in snapshot.selectors)
    return lines


def _fit(line: str, columns: int) -> str:
    """Cut a panel line to the terminal's width, so redrawing in place counts rows right."""
    return line if len(line) < columns else line[: max(0, columns - 2)] + "…"


def _state_line(snapshot: Snapshot) -> str:
    """One line per change, for --plain."""
    step = f"{snapshot.step}/{snapshot.steps}" if snapshot.step is not None else "-"
    sets = ", ".join(f"{rs.image} {rs.available}/{rs.replicas}" for rs in snapshot.replica_sets)
    images = snapshot.selector_images()
    selectors = " ".join(f"{role}→{image or '-'}" for role, image in images.items())
    return (f"    · {snapshot.phase or '-'} step {step} | weights {_weights_text(snapshot)} "
            f"| rs {sets or '-'} | svc {selectors or '-'}")


class Display:
    """Log lines, plus the live state: redrawn in place under the log on a terminal, else
    printed as one line per change."""

    def __init__(self, out: TextIO, *, live: bool, now: Callable[[], datetime]) -> None:
        self._out = out
        self._live = live
        self._now = now
        self._panel = 0  # lines of the panel currently drawn
        self._snapshot: Snapshot | None = None

    def _paint(self, text: str, colour: str) -> str:
        return f"{colour}{text}{_RESET}" if self._live else text

    def ok(self, text: str) -> None:
        self.log(self._paint("  ✔ ", _GREEN) + text)

    def fail(self, text: str) -> None:
        self.log(self._paint("  ✘ ", _RED) + text)

    def heading(self, text: str) -> None:
        self.log(self._paint(text, _BOLD))

    def detail(self, text: str) -> None:
        self.log(self._paint(f"    {text}", _DIM))

    def log(self, line: str) -> None:
        self._erase()
        self._out.write(line + "\n")
        self._draw()

    def show(self, snapshot: Snapshot) -> None:
        """A new state: redraw the panel, or print a line."""
        self._snapshot = snapshot
        if self._live:
            self.refresh()
        else:
            self._out.write(_state_line(snapshot) + "\n")
            self._out.flush()

    def refresh(self) -> None:
        """Redraw the panel (the pause countdown moves with the clock)."""
        if self._live:
            self._erase()
            self._draw()

    def close(self) -> None:
        """Leave the last panel on screen, as the final state."""
        self._panel = 0
        self._out.flush()

    def _erase(self) -> None:
        if self._panel:
            self._out.write(f"\x1b[{self._panel}F\x1b[J")
            self._panel = 0

    def _draw(self) -> None:
        if self._live and self._snapshot is not None:
            lines = _state_lines(self._snapshot, now=self._now())
            columns = shutil.get_terminal_size().columns
            self._out.write("".join(_fit(line, columns) + "\n" for line in lines))
            self._panel = len(lines)
        self._out.flush()


class _LogToDisplay(logging.Handler):
    """The daemon's warnings, as log lines that do not break the panel."""

    def __init__(self, display: Display) -> None:
        super().__init__(logging.WARNING)
        self._display = display

    def emit(self, record: logging.LogRecord) -> None:
        self._display.detail(f"log {record.levelname.lower()}: {record.getMessage()}")


@contextmanager
def _daemon_logs_shown(display: Display) -> Iterator[None]:
    logger = logging.getLogger("shiftd")
    handler = _LogToDisplay(display)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


# --- running it ------------------------------------------------------------------------------

@dataclass
class _World:
    """The running demo: emulator, daemon, the demo's client and its watches."""

    client: KubeClient
    seed: list[Obj]
    clock: ScaledClock
    display: Display
    started: float = field(default_factory=time.monotonic)
    history: list[Observation] = field(default_factory=list)
    _informers: dict[str, Informer] = field(default_factory=dict)
    _changed: anyio.Event = field(default_factory=anyio.Event)

    def watch(self) -> list[Informer]:
        def changed(_type: str, _obj: Obj) -> None:
            self._record()

        for kind in (ROLLOUT, VIRTUAL_SERVICE, REPLICA_SET, SERVICE):
            self._informers[kind.kind] = Informer(
                self.client, kind, namespaces=[NAMESPACE], on_change=changed)
        self._informers[EVENT.kind] = Informer(
            self.client, EVENT, namespaces=[NAMESPACE], on_change=self._event)
        return list(self._informers.values())

    def _record(self) -> None:
        get = self._informers
        rollout = get[ROLLOUT.kind].get(NAMESPACE, ROLLOUT_NAME)
        canary = ((rollout or {}).get("spec") or {}).get("strategy", {}).get("canary") or {}
        vs_name = (((canary.get("trafficRouting") or {}).get("istio") or {})
                   .get("virtualService") or {}).get("name")
        services = {name: get[SERVICE.kind].get(NAMESPACE, name)
                    for name in (canary.get("stableService"), canary.get("canaryService"))
                    if name}
        snapshot = snapshot_of(
            rollout,
            get[VIRTUAL_SERVICE.kind].get(NAMESPACE, vs_name) if vs_name else None,
            get[REPLICA_SET.kind].items(NAMESPACE),
            services,
        )
        if self.history and self.history[-1].snapshot == snapshot:
            return
        self.history.append(Observation(snapshot, self.clock.now(), self.elapsed()))
        self.display.show(snapshot)
        self._changed.set()
        self._changed = anyio.Event()

    def _event(self, kind: str, event: Obj) -> None:
        if kind != "ADDED" or (event.get("source") or {}).get("component") != "shiftd":
            return
        self.display.detail(f"event {event.get('type')} {event.get('reason')}: "
                            f"{event.get('message')}")

    async def changed(self) -> None:
        await self._changed.wait()

    def elapsed(self) -> float:
        return time.monotonic() - self.started


@asynccontextmanager
async def _running(
    shared: Path, *, speed: float, out: TextIO, live: bool
) -> AsyncIterator[_World]:
    seed = _seed_documents(shared)
    crds = await anyio.to_thread.run_sync(load_crd_documents, _crd_files(shared))
    clock = ScaledClock(speed)
    with tempfile.TemporaryDirectory(prefix="shiftd-demo-") as scratch:
        async with ApiEmulator(crds=crds) as api:
            kubeconfig = api.write_kubeconfig(Path(scratch) / "kubeconfig")
            settings = parse_settings({
                "kubernetes": {"kubeconfig": str(kubeconfig), "qps": 1000, "burst": 1000},
                "namespaces": [NAMESPACE],
                "listen": {"port": 0},
                "workers": 4,
            }, source="demo settings")
            daemon = Daemon(settings, clock=clock)
            display = Display(out, live=live, now=clock.now)
            client = await KubeClient.from_settings(
                kubeconfig=str(kubeconfig), context=None, in_cluster=False, qps=1000, burst=1000)
            try:
                async with ApiClient(api.configuration()) as kubelet_client:
                    world = _World(client=client, seed=seed, clock=clock, display=display)
                    with _daemon_logs_shown(display):
                        async with anyio.create_task_group() as group:
                            kubelet = FakeKubelet(kubelet_client, namespaces=[NAMESPACE],
                                                  ready_after=_READY_AFTER / speed)
                            await group.start(kubelet.run)
                            await group.start(daemon.run)
                            for informer in world.watch():
                                await group.start(informer.run)
                            if live:
                                group.start_soon(_tick, display)
                            display.detail(f"API emulator at {api.url}; daemon metrics at "
                                           f"http://127.0.0.1:{daemon.port}/metrics")
                            try:
                                yield world
                            finally:
                                group.cancel_scope.cancel()
                    display.close()
            finally:
                with anyio.CancelScope(shield=True):
                    await client.close()


async def _tick(display: Display) -> None:
    while True:
        await anyio.sleep(0.1)  # only redraws the pause countdown; nothing waits on it
        display.refresh()


async def _reach(world: _World, stage: Stage, *, since: int, deadline: float) -> (
    Observation | None
):
    """The first state recorded from ``since`` on that matches; ``None`` at the deadline."""
    with anyio.move_on_after(deadline):
        while True:
            for observation in world.history[since:]:
                if not stage.expect.mismatches(observation.snapshot):
                    return observation
            since = len(world.history)
            await world.changed()
    return None


async def _play(world: _World, scenario: Sequence[Stage], *, speed: float, slack: float) -> (
    bool
):
    """Run the stages in order; stop at the first state not reached. True if all were."""
    display = world.display
    previous: Observation | None = None
    for number, stage in enumerate(scenario, start=1):
        display.heading(f"[{number}/{len(scenario)}] {stage.title}")
        since = len(world.history)
        if stage.action is not None:
            display.detail(f"$ {stage.action.describe()}")
            try:
                sent = await stage.action.run(world)
            except (KubeError, CommandError, DemoError) as error:
                display.fail(f"{stage.action.describe()} failed: {error}")
                return False
            for line in sent:
                display.detail(f"→ {line}")
        steps = world.history[-1].snapshot.steps if world.history else 0
        reached = await _reach(world, stage, since=since,
                               deadline=slack + stage.waits / speed)
        if reached is None:
            last = world.history[-1].snapshot if world.history else Snapshot()
            display.fail(f"not reached within {slack + stage.waits / speed:.1f}s: "
                         f"{stage.expect.describe(steps or last.steps)}")
            for problem in stage.expect.mismatches(last):
                display.fail(problem)
            return False
        took = ""
        if previous is not None and stage.waits:
            waited = (reached.at - previous.at).total_seconds()
            took = f" after {waited:.0f}s of rollout time"
            allowance = min(stage.waits / 2, 1 + _OBSERVATION_LAG * speed)
            if waited < stage.waits - allowance:
                display.fail(f"reached{took}: the spec asks for {stage.waits:.0f}s")
                return False
        display.ok(f"{stage.expect.describe(reached.snapshot.steps)}{took} "
                   f"[{reached.wall:.1f}s]")
        previous = reached
    return True


async def run_demo(
    speed: float,
    plain: bool,
    *,
    scenario: Sequence[Stage] = SCENARIO,
    out: TextIO | None = None,
    slack: float = 10.0,
) -> int:
    """Play ``scenario`` (seed 000's by default); 0 when every state was reached, else 1.

    ``speed`` is rollout seconds per wall second; ``slack`` is the wall seconds each state gets
    on top of the pauses and delays it waits for.
    """
    out = sys.stdout if out is None else out
    if speed <= 0:
        print("shiftd demo: --speed must be positive", file=sys.stderr)
        return 1
    try:
        shared = find_shared_dir()
    except DemoError as error:
        print(f"shiftd demo: {error}", file=sys.stderr)
        return 1
    live = not plain and out.isatty() and os.environ.get("TERM") != "dumb"
    out.write(f"shiftd demo: seed 000 ({shared / SEED_FOLDER}) on the embedded API emulator, "
              f"speed x{speed:g}\n")
    try:
        async with _running(shared, speed=speed, out=out, live=live) as world:
            matched = await _play(world, scenario, speed=speed, slack=slack)
            elapsed = world.elapsed()
    except DemoError as error:
        print(f"shiftd demo: {error}", file=sys.stderr)
        return 1
    verdict = "every state matched" if matched else "a state was not reached"
    out.write(f"shiftd demo: {verdict} ({elapsed:.1f}s)\n")
    out.flush()
    return 0 if matched else 1
