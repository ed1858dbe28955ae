"""Reading what ``get rollout`` shows: once, or kept current by watches for ``--watch``.

``read_view`` lists the Rollout's ReplicaSets, pods and AnalysisRuns and reads the canary
weight off its VirtualService (from ``mesh``, the client of a separate mesh cluster, when one
is given). ``watch_views`` runs one ``Informer`` (list + watch, resumed
and relisted as the daemon's are) per kind in the Rollout's namespace and hands a fresh
``RolloutObjects`` to its callback after every change: the redraw is driven by watch events,
never by polling. It runs until cancelled; the task group lives inside the caller's task.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio

from shiftd.cli.ctl.common import CommandError, Obj, not_found
from shiftd.cli.ctl.operations import get_rollout
from shiftd.common.tasks import running
from shiftd.kube.client import KubeClient
from shiftd.kube.errors import NotFound
from shiftd.kube.informer import Informer
from shiftd.kube.resources import ANALYSIS_RUN, POD, REPLICA_SET, ROLLOUT, VIRTUAL_SERVICE
from shiftd.model.argo.rollout import InvalidSpecError, parse_rollout
from shiftd.model.argo.workload import with_placeholder_template
from shiftd.traffic.istio.routes import Destinations, RouteError, observe_weight
from shiftd.views import RolloutObjects, owned_objects

__all__ = ["actual_weight_of", "assemble_view", "read_view", "watch_views"]

VsLookup = Callable[[str, str], Obj | None]  # (namespace, name) -> VirtualService or None


def actual_weight_of(rollout: Obj, lookup: VsLookup) -> str:
    """The weight the (first) VirtualService routes to the current revision, or a dash and
    why not. Once the current revision is stable it gets the stable weight, so a promoted
    Rollout reads 100 (as the plugin shows it)."""
    try:
        parsed = parse_rollout(with_placeholder_template(rollout))
    except InvalidSpecError:
        return "-"
    istio = parsed.canary.istio
    if istio is None:
        return "-"
    ref = istio.virtual_services[0]
    rule = istio.destination_rule or {}
    destinations = Destinations(
        canary_service=parsed.canary.canary_service, stable_service=parsed.canary.stable_service,
        canary_subset=rule.get("canarySubsetName"), stable_subset=rule.get("stableSubsetName"))
    vs = lookup(ref.namespace or parsed.namespace, ref.name)
    if vs is None:
        return f"- (VirtualService {ref.name!r} not found)"
    status = rollout.get("status") or {}
    promoted = bool(status.get("currentPodHash")) and \
        status.get("currentPodHash") == status.get("stableRS")
    try:
        weight = observe_weight(vs, ref, destinations)
    except RouteError as error:
        return f"- ({error})"
    return str(100 - weight if promoted else weight)


def assemble_view(rollout: Obj, *, replica_sets: Sequence[Obj], pods: Sequence[Obj],
                  analysis_runs: Sequence[Obj], lookup: VsLookup) -> RolloutObjects:
    """The Rollout's own objects out of everything read in its namespace, with the weight its
    VirtualService routes to the canary."""
    return owned_objects(rollout, replica_sets=replica_sets, pods=pods,
                         analysis_runs=analysis_runs,
                         actual_weight=actual_weight_of(rollout, lookup))


def _selector_text(rollout: Mapping[str, Any]) -> str | None:
    labels = (((rollout.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items())) or None


async def read_view(client: KubeClient, *, namespace: str, name: str,
                    mesh: KubeClient | None = None) -> RolloutObjects:
    """One read of everything ``get rollout`` shows."""
    rollout = await get_rollout(client, namespace=namespace, name=name)
    selector = _selector_text(rollout)
    replica_sets, _ = await client.list(REPLICA_SET, namespace, label_selector=selector)
    pods, _ = await client.list(POD, namespace, label_selector=selector)
    try:
        runs, _ = await client.list(ANALYSIS_RUN, namespace)
    except NotFound:  # the AnalysisRun CRD is not installed: there are none
        runs = []
    services: dict[tuple[str, str], Obj | None] = {}
    try:
        parsed = parse_rollout(with_placeholder_template(rollout))
    except InvalidSpecError:
        parsed = None
    if parsed is not None and parsed.canary.istio is not None:
        ref = parsed.canary.istio.virtual_services[0]
        key = (ref.namespace or namespace, ref.name)
        try:
            services[key] = await (mesh or client).get(VIRTUAL_SERVICE, *key)
        except NotFound:
            services[key] = None
    return assemble_view(rollout, replica_sets=replica_sets, pods=pods, analysis_runs=runs,
                         lookup=lambda ns, vs_name: services.get((ns, vs_name)))


async def watch_views(
    client: KubeClient, *, namespace: str, name: str,
    on_view: Callable[[RolloutObjects], None], mesh: KubeClient | None = None,
) -> None:
    """Call ``on_view`` with the current view, then after every change seen by a watch.

    Raises ``CommandError`` when the Rollout does not exist at the start or is deleted.
    Never returns: cancel it (Ctrl-C, a timeout) to stop.
    """
    changed = anyio.Event()
    state = {"changed": changed}

    def on_change(_type: str, _obj: Obj) -> None:
        state["changed"].set()

    start = await get_rollout(client, namespace=namespace, name=name)
    selector = _selector_text(start)
    kinds = [(ROLLOUT, None), (REPLICA_SET, selector), (POD, selector), (VIRTUAL_SERVICE, None)]
    try:
        await client.list(ANALYSIS_RUN, namespace)
        kinds.append((ANALYSIS_RUN, None))
    except NotFound:
        pass  # the AnalysisRun CRD is not installed: there are none to watch
    informers = {kind.kind: Informer(mesh or client if kind is VIRTUAL_SERVICE else client,
                                     kind, namespaces=[namespace], on_change=on_change,
                                     label_selector=labels)
                 for kind, labels in kinds}
    async with running(*(informer.run for informer in informers.values())):
        seen = False
        while True:
            state["changed"] = anyio.Event()
            rollout = informers["Rollout"].get(namespace, name)
            if rollout is None:
                if seen:
                    raise CommandError(f'rollout "{name}" was deleted')
                raise not_found(name, namespace)
            seen = True
            view = assemble_view(
                rollout, replica_sets=informers["ReplicaSet"].items(namespace),
                pods=informers["Pod"].items(namespace),
                analysis_runs=(informers["AnalysisRun"].items(namespace)
                               if "AnalysisRun" in informers else []),
                lookup=informers["VirtualService"].get)
            on_view(view)
            await state["changed"].wait()
