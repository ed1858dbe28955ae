"""Flagger's canary state machine, decided purely: a table of single transitions, and whole
walks on a small in-memory cluster (Deployments ready at once, the clock driven by hand)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from shiftd.decide.flagger import status as st
from shiftd.decide.flagger.actions import Put, ScaleTarget, Step
from shiftd.decide.flagger.finalize import finalize
from shiftd.decide.flagger.hashing import template_hash, written_by_flagger
from shiftd.decide.flagger.machine import advance, next_step_weight
from shiftd.decide.flagger.observed import Observed, Verdict
from shiftd.decide.flagger.routes import ORIGINAL_CONFIGURATION, observe_routes
from shiftd.decide.flagger.workloads import not_ready
from shiftd.model.flagger.canary import FINALIZER, Canary, parse_canary
from tests.integration.harness import shared_dir

Obj = dict[str, Any]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def seed_documents() -> dict[str, Obj]:
    folder = shared_dir() / "examples" / "flagger-podinfo"
    found: dict[str, Obj] = {}
    for path in sorted(folder.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found[doc["kind"]] = doc
    return found


def ready(deployment: Obj) -> Obj:
    deployment = copy.deepcopy(deployment)
    meta, spec = deployment.setdefault("metadata", {}), deployment["spec"]
    meta.setdefault("generation", 1)
    count = spec.setdefault("replicas", 1)
    deployment["status"] = {"observedGeneration": meta["generation"], "replicas": count,
                            "updatedReplicas": count, "availableReplicas": count}
    return deployment


@dataclass
class World:
    """One Canary and what it owns, in memory; ``step`` applies what ``advance`` decides."""

    canary: Obj
    target: Obj
    objects: dict[tuple[str, str], Obj] = field(default_factory=dict)
    now: datetime = T0
    events: list[str] = field(default_factory=list)
    verdict: Verdict = field(default_factory=lambda: Verdict(passed=True))
    gates: dict[str, Verdict] = field(default_factory=dict)

    @classmethod
    def seed(cls, **analysis: Any) -> World:
        docs = seed_documents()
        canary = copy.deepcopy(docs["Canary"])
        canary["metadata"].update(uid="uid-1", namespace="test")
        canary["spec"]["analysis"].update(analysis)
        canary["spec"]["analysis"]["webhooks"] = []
        return cls(canary=canary, target=ready(docs["Deployment"]))

    @property
    def parsed(self) -> Canary:
        return parse_canary(self.canary)

    @property
    def status(self) -> Obj:
        return self.canary.setdefault("status", {})

    def observed(self) -> Observed:
        return Observed(
            target=self.target, primary=self.objects.get(("Deployment", "podinfo-primary")),
            virtual_service=self.objects.get(("VirtualService", "podinfo")),
            services={n: self.objects.get(("Service", n))
                      for n in ("podinfo", "podinfo-primary", "podinfo-canary")},
            destination_rules={n: self.objects.get(("DestinationRule", n))
                               for n in ("podinfo-primary", "podinfo-canary")},
            autoscaler=self.objects.get(("HorizontalPodAutoscaler", "podinfo")),
            primary_autoscaler=self.objects.get(("HorizontalPodAutoscaler", "podinfo-primary")))

    def decide(self) -> Step:
        answers: dict[str, Verdict] = {}
        step = advance(self.parsed, self.observed(), now=self.now)
        while step.needs_checks is not None:
            kind = step.needs_checks
            answers[kind] = self.gates.get(kind, self.verdict)
            step = advance(self.parsed, replace(self.observed(), checks=dict(answers)),
                           now=self.now)
        return step

    def step(self) -> Step:
        step = self.decide()
        self.apply(step)
        return step

    def apply(self, step: Step) -> None:
        for action in step.actions:
            if isinstance(action, Put):
                body = ready(action.body) if action.kind == "Deployment" else action.body
                self.objects[(action.kind, action.name)] = body
            elif isinstance(action, ScaleTarget):
                self.target["spec"]["replicas"] = action.replicas
                self.target = ready(self.target)
        if step.status is not None:
            self.status.update(step.status)
        self.events.extend(event.message for event in step.events)

    def tick(self) -> Step:
        """Let one analysis interval pass, then reconcile."""
        self.now += MINUTE
        return self.step()

    def initialise(self) -> None:
        self.step()
        self.step()
        self.step()
        assert self.status["phase"] == st.INITIALIZED

    def set_image(self, image: str) -> None:
        self.target["spec"]["template"]["spec"]["containers"][0]["image"] = image
        self.target["metadata"]["generation"] += 1
        self.target = ready(self.target)

    @property
    def weight(self) -> int:
        vs = self.objects[("VirtualService", "podinfo")]
        return observe_routes(self.parsed, vs).canary


def test_a_new_canary_creates_its_objects_and_is_initialized_once_the_primary_is_ready() -> None:
    world = World.seed()
    first = world.step()
    assert first.status is not None and first.status["phase"] == st.INITIALIZING
    assert {(a.kind, a.name) for a in first.actions if isinstance(a, Put)} == {
        ("Service", "podinfo-primary"), ("Service", "podinfo-canary"),
        ("DestinationRule", "podinfo-primary"), ("DestinationRule", "podinfo-canary"),
        ("Deployment", "podinfo-primary")}
    second = world.step()  # the primary is ready: traffic is pointed at it
    assert {(a.kind, a.name) for a in second.actions if isinstance(a, Put)} == {
        ("Service", "podinfo"), ("VirtualService", "podinfo")}
    assert world.status["phase"] == st.INITIALIZED
    assert world.target["spec"]["replicas"] == 0
    assert world.events == ["Initialization done! podinfo.test"]
    assert world.status["lastAppliedSpec"] == template_hash(world.target["spec"]["template"])
    primary = world.objects[("Deployment", "podinfo-primary")]
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert world.decide() == Step()  # a fixed point: nothing more until something changes


def test_a_new_image_is_promoted_step_by_step_to_max_weight_then_promoted() -> None:
    world = World.seed()
    world.initialise()
    world.set_image("stefanprodan/podinfo:3.1.1")
    weights, phases = [], []
    for _ in range(12):
        world.tick()
        weights.append(world.weight)
        phases.append(world.status["phase"])
    assert weights[:7] == [0, 10, 20, 30, 40, 50, 50]
    assert phases[:9] == [st.PROGRESSING] * 6 + [st.PROMOTING, st.FINALISING, st.SUCCEEDED]
    primary = world.objects[("Deployment", "podinfo-primary")]
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"].endswith("3.1.1")
    assert world.target["spec"]["replicas"] == 0 and world.weight == 0
    assert world.events[1:] == [
        "New revision detected! Scaling up podinfo.test",
        "Starting canary analysis for podinfo.test",
        *[f"Advance podinfo.test canary weight {w}" for w in (10, 20, 30, 40, 50)],
        "Copying podinfo.test template spec to podinfo-primary.test",
        "Routing all traffic to primary",
        "Promotion completed! Scaling down podinfo.test"]


def test_failing_checks_roll_back_once_the_threshold_is_reached() -> None:
    world = World.seed(threshold=2)
    world.initialise()
    world.set_image("stefanprodan/podinfo:3.1.1")
    world.tick()
    world.tick()
    world.tick()
    assert world.weight == 20
    world.verdict = Verdict(passed=False)
    world.tick()
    world.tick()
    assert world.status["failedChecks"] == 2 and world.weight == 20
    world.tick()
    assert world.status["phase"] == st.FAILED and world.weight == 0
    assert world.target["spec"]["replicas"] == 0
    assert world.events[-2:] == ["Rolling back podinfo.test failed checks threshold reached 2",
                                 "Canary failed! Scaling down podinfo.test"]
    world.tick()
    assert world.status["phase"] == st.FAILED  # the failed revision is not tried again


def test_nothing_advances_before_an_interval_has_passed() -> None:
    world = World.seed()
    world.initialise()
    world.set_image("stefanprodan/podinfo:3.1.1")
    world.tick()
    world.now += timedelta(seconds=30)
    step = world.decide()
    assert step.status is None and step.requeue_at == T0 + 2 * MINUTE


@pytest.mark.parametrize(("step_weights", "current", "expected"), [
    ((1, 2, 10, 80), 0, 1),
    ((1, 2, 10, 80), 2, 8),
    ((1, 2, 10, 80), 80, 20),
    ((1, 2, 10, 80), 100, 1),
])
def test_step_weights_advance_to_the_next_listed_weight(
        step_weights: tuple[int, ...], current: int, expected: int) -> None:
    world = World.seed(stepWeight=0, stepWeights=list(step_weights))
    assert next_step_weight(world.parsed, current) == expected


def test_step_weight_promotion_hands_traffic_back_in_steps() -> None:
    world = World.seed(stepWeightPromotion=30)
    world.initialise()
    world.set_image("stefanprodan/podinfo:3.1.1")
    for _ in range(7):
        world.tick()
    assert world.status["phase"] == st.PROMOTING and world.weight == 50
    world.tick()
    assert world.weight == 20 and world.status["phase"] == st.PROMOTING
    world.tick()
    assert world.weight == 0 and world.status["phase"] == st.FINALISING


def test_ab_testing_routes_matching_requests_for_each_iteration() -> None:
    world = World.seed(iterations=2, match=[{"headers": {"x-canary": {"exact": "insider"}}}])
    world.initialise()
    world.set_image("stefanprodan/podinfo:3.1.1")
    world.tick()
    world.tick()
    vs = world.objects[("VirtualService", "podinfo")]
    assert vs["spec"]["http"][0]["match"] == [{"headers": {"x-canary": {"exact": "insider"}}}]
    assert world.weight == 100 and world.status["iterations"] == 1
    world.tick()
    world.tick()
    assert world.status["phase"] == st.PROMOTING


def test_mirroring_takes_one_mirrored_step_before_shifting_traffic() -> None:
    world = World.seed(mirror=True, mirrorWeight=40)
    world.initialise()
    world.set_image("stefanprodan/podinfo:3.1.1")
    world.tick()
    world.tick()
    http = world.objects[("VirtualService", "podinfo")]["spec"]["http"][0]
    assert http["mirror"] == {"host": "podinfo-canary"}
    assert http["mirrorPercentage"] == {"value": 40} and world.weight == 0
    world.tick()
    assert world.weight == 10 and "mirror" not in world.objects[
        ("VirtualService", "podinfo")]["spec"]["http"][0]


def test_skip_analysis_promotes_at_once() -> None:
    world = World.seed()
    world.canary["spec"]["skipAnalysis"] = True
    world.initialise()
    world.set_image("stefanprodan/podinfo:3.1.1")
    world.tick()
    world.tick()
    assert world.status["phase"] == st.SUCCEEDED
    assert world.events[-1] == "Promotion completed! Canary analysis was skipped for podinfo.test"


def test_a_suspended_canary_writes_nothing() -> None:
    world = World.seed()
    world.canary["spec"]["suspend"] = True
    assert world.decide() == Step()


def test_a_changed_template_mid_analysis_restarts_it() -> None:
    world = World.seed()
    world.initialise()
    world.set_image("stefanprodan/podinfo:3.1.1")
    world.tick()
    world.tick()
    world.set_image("stefanprodan/podinfo:3.1.2")
    world.tick()
    assert world.events[-1] == "New revision detected! Restarting analysis for podinfo.test"
    assert world.weight == 0 and world.status["phase"] == st.PROGRESSING


def test_a_canary_taken_over_from_flagger_starts_nothing_new() -> None:
    world = World.seed()
    world.initialise()
    world.status["lastAppliedSpec"] = "5f7d8c9b4"  # Flagger's own hash: ours differ
    assert written_by_flagger(world.status["lastAppliedSpec"])
    world.tick()
    assert world.status["phase"] == st.INITIALIZED
    assert world.status["lastAppliedSpec"] == template_hash(world.target["spec"]["template"])


def test_an_unready_canary_past_its_progress_deadline_is_rolled_back() -> None:
    world = World.seed()
    world.initialise()
    world.set_image("stefanprodan/podinfo:3.1.1")
    world.tick()
    world.target["status"]["availableReplicas"] = 0
    world.target["status"]["conditions"] = [
        {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"},
        {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
         "lastUpdateTime": "2026-01-01T00:01:00Z"}]
    world.tick()
    assert world.status["phase"] == st.PROGRESSING
    assert world.events[-1] == ("canary deployment podinfo.test not ready: waiting for rollout "
                                "to finish: 0 of 1 (readyThreshold 100%) updated replicas are "
                                "available")
    world.now += timedelta(seconds=60)  # the seed's progressDeadlineSeconds
    world.step()
    assert world.status["phase"] == st.FAILED and world.target["spec"]["replicas"] == 0
    assert world.events[-1] == "Canary failed! Scaling down podinfo.test"


def test_going_back_to_the_promoted_template_starts_nothing() -> None:
    world = World.seed(threshold=1)
    world.initialise()
    promoted = copy.deepcopy(world.target["spec"]["template"])
    world.set_image("stefanprodan/podinfo:3.1.1")
    world.verdict = Verdict(passed=False)
    for _ in range(4):
        world.tick()
    assert world.status["phase"] == st.FAILED
    world.target["spec"]["template"] = promoted
    world.tick()
    assert world.status["phase"] == st.FAILED


@pytest.mark.parametrize(("status", "expected"), [
    ({"observedGeneration": 1}, "observed deployment generation less than desired generation"),
    ({"observedGeneration": 2, "updatedReplicas": 1}, "1 out of 2 new replicas"),
    ({"observedGeneration": 2, "updatedReplicas": 2, "replicas": 3}, "1 old replicas"),
    ({"observedGeneration": 2, "updatedReplicas": 2, "replicas": 2, "availableReplicas": 1},
     "1 of 2 (readyThreshold 100%) updated replicas are available"),
    ({"observedGeneration": 2, "updatedReplicas": 2, "replicas": 2, "availableReplicas": 2},
     None),
])
def test_readiness_is_judged_with_flaggers_messages(status: Obj, expected: str | None) -> None:
    found = not_ready({"metadata": {"generation": 2}, "spec": {"replicas": 2},
                       "status": status}, threshold_percent=100)
    assert (found is None) if expected is None else (expected in str(found))


def test_deleting_with_revert_on_deletion_restores_the_target_and_what_was_taken_over() -> None:
    world = World.seed()
    world.canary["spec"]["revertOnDeletion"] = True
    world.objects[("VirtualService", "podinfo")] = {
        "metadata": {"name": "podinfo", "resourceVersion": "1"},
        "spec": {"hosts": ["podinfo"], "http": [{"route": [{"destination": {
            "host": "podinfo"}}]}]}}
    world.objects[("Service", "podinfo")] = {
        "metadata": {"name": "podinfo", "resourceVersion": "1"},
        "spec": {"clusterIP": "10.0.0.9", "selector": {"app": "podinfo"},
                 "ports": [{"name": "http", "protocol": "TCP", "port": 9898,
                            "targetPort": 9898}]}}
    world.initialise()
    assert world.objects[("Service", "podinfo")]["spec"]["selector"] == {
        "app": "podinfo-primary"}
    taken = world.objects[("VirtualService", "podinfo")]
    assert "ownerReferences" not in taken["metadata"]  # deleting the Canary leaves it
    assert ORIGINAL_CONFIGURATION in taken["metadata"]["annotations"]
    assert observe_routes(world.parsed, taken).primary == 100  # all to the primary at first
    world.canary["metadata"].update(deletionTimestamp="2026-01-01T00:10:00Z",
                                    finalizers=[FINALIZER])
    steps = []
    for _ in range(4):
        step = finalize(world.parsed, world.observed(), now=world.now)
        world.apply(step)
        steps.append(step)
        if step.finalizer == "remove":
            break
    assert world.status["phase"] == st.TERMINATING
    assert world.target["spec"]["replicas"] == 1
    restored = world.objects[("VirtualService", "podinfo")]
    assert restored["spec"] == {"hosts": ["podinfo"], "http": [
        {"route": [{"destination": {"host": "podinfo"}}]}]}
    apex = world.objects[("Service", "podinfo")]
    assert apex["spec"] == {**apex["spec"], "selector": {"app": "podinfo"},
                            "clusterIP": "10.0.0.9"}
    assert steps[-1].finalizer == "remove"


def test_the_primary_gets_its_own_hpa_and_a_new_revision_starts_at_the_hpa_minimum() -> None:
    world = World.seed()
    world.objects[("HorizontalPodAutoscaler", "podinfo")] = seed_documents()[
        "HorizontalPodAutoscaler"]
    world.initialise()
    primary_hpa = world.objects[("HorizontalPodAutoscaler", "podinfo-primary")]
    assert primary_hpa["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"
    world.set_image("stefanprodan/podinfo:3.1.1")
    world.tick()
    assert world.target["spec"]["replicas"] == 2


def gated(kind: str) -> World:
    world = World.seed()
    world.canary["spec"]["analysis"]["webhooks"] = [
        {"name": "gate", "type": kind, "url": "http://gate/"}]
    return world


def test_a_refused_confirm_rollout_waits_and_an_approval_starts_the_revision() -> None:
    world = gated("confirm-rollout")
    world.initialise()
    world.set_image("stefanprodan/podinfo:3.1.1")
    world.gates["confirm-rollout"] = Verdict(passed=False, hook="gate")
    world.tick()
    assert world.status["phase"] == st.WAITING and world.target["spec"]["replicas"] == 0
    assert world.events[-1] == "Halt podinfo.test advancement waiting for approval gate"
    world.tick()
    assert world.status["phase"] == st.WAITING
    world.gates["confirm-rollout"] = Verdict(passed=True, hook="gate")
    world.tick()
    assert world.status["phase"] == st.PROGRESSING and world.target["spec"]["replicas"] == 1
    assert world.events[-2:] == ["Confirm-rollout check gate passed",
                                 "New revision detected! Scaling up podinfo.test"]


def test_a_refused_confirm_promotion_waits_at_max_weight_until_approved() -> None:
    world = gated("confirm-promotion")
    world.initialise()
    world.set_image("stefanprodan/podinfo:3.1.1")
    world.gates["confirm-promotion"] = Verdict(passed=False, hook="gate")
    for _ in range(7):
        world.tick()
    assert world.status["phase"] == st.WAITING_PROMOTION and world.weight == 50
    assert "Halt podinfo.test advancement waiting for promotion approval gate" in world.events
    world.gates["confirm-promotion"] = Verdict(passed=True, hook="gate")
    world.tick()
    assert world.status["phase"] == st.PROMOTING
    assert world.events[-2] == "Confirm-promotion check gate passed"


def test_a_refused_traffic_increase_holds_the_weight() -> None:
    world = gated("confirm-traffic-increase")
    world.initialise()
    world.set_image("stefanprodan/podinfo:3.1.1")
    world.gates["confirm-traffic-increase"] = Verdict(passed=False, hook="gate")
    world.tick()
    world.tick()
    world.tick()
    assert world.weight == 0 and world.status["phase"] == st.PROGRESSING
    assert world.events[-1] == ("Halt podinfo.test advancement waiting for traffic increase "
                                "approval gate")


def test_a_rollback_hook_answering_ok_rolls_the_canary_back() -> None:
    world = gated("rollback")
    world.initialise()
    world.set_image("stefanprodan/podinfo:3.1.1")
    world.gates["rollback"] = Verdict(passed=False)
    world.tick()
    world.tick()
    assert world.weight == 10
    world.gates["rollback"] = Verdict(passed=True, hook="gate")
    world.tick()
    assert world.status["phase"] == st.FAILED and world.weight == 0
    assert "Rolling back podinfo.test manual webhook invoked" in world.events


def test_a_canary_taken_over_from_flagger_mid_analysis_carries_on_from_its_weight() -> None:
    world = World.seed()
    world.initialise()
    world.set_image("stefanprodan/podinfo:3.1.1")
    world.tick()
    world.tick()
    world.tick()
    assert world.weight == 20
    world.status["lastAppliedSpec"] = "8945bd7cf"  # as Flagger left it
    world.tick()
    assert world.weight == 30 and world.status["phase"] == st.PROGRESSING
    assert world.status["lastAppliedSpec"] == template_hash(world.target["spec"]["template"])
    assert not any("Restarting" in event for event in world.events)


def test_a_missing_target_is_reported_as_flagger_does() -> None:
    world = World.seed()
    step = advance(world.parsed, replace(world.observed(), target=None), now=T0)
    assert [e.message for e in step.events] == [
        'deployment podinfo.test get query error: deployments.apps "podinfo" not found']
    assert step.requeue_at == T0 + MINUTE and not step.actions
