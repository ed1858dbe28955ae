"""The benchmark's cluster: ``ApiEmulator`` and ``FakeKubelet`` in a process of their own.

``bench/rollouts.py`` starts this script as a subprocess so that the API server's CPU time is
not charged to the daemon under test. It serves the Kubernetes API on one port and a small
control API for the benchmark on another, and prints one JSON line to stdout once both
listen: ``{"api": URL, "control": URL, "kubeconfig": PATH}``. It runs until stdin closes or
it gets SIGTERM/SIGINT.

Control API (JSON in and out):

* ``POST /seed {"count", "namespace", "image"}``: create ``count`` Rollouts shaped like the
  asm-host-split example (a canary and a stable Service, a VirtualService, one replica each)
  directly in the store, so seeding costs the daemon nothing. They are written as
  ``kubectl apply`` writes them: with the last-applied annotation, and with managedFields
  owned by ``kubectl-client-side-apply`` (the store records them as a real server does).
* ``POST /set-image {"image"}``: change every Rollout's pod template image (a new revision),
  again as ``kubectl apply`` does (annotation and managedFields updated).

The API is served over HTTPS (``--tls``, the default; ``--no-tls`` for plain HTTP): the
kubeconfig carries the emulator's certificate authority, so the daemon verifies the server.
* ``GET /summary``: how many Rollouts are in each phase / step / canary weight, the distinct
  pause start times, and the VirtualService weights.
* ``GET /requests?since=I``: the request log from index ``I`` on, as
  ``[method, path, status, watch, at]`` rows (``at`` is ``time.monotonic()``).
* ``GET /usage``: this process's CPU seconds and peak RSS.
* ``POST /profile {"start": true}`` / ``{"dump": PATH}``: cProfile this process.
"""

from __future__ import annotations

import argparse
import cProfile
import resource
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import orjson
from aiohttp import web
from kubernetes_asyncio.client import ApiClient

from shiftd.sim import ApiEmulator, FakeKubelet, default_crd_files
from shiftd.sim.kinds import ResourceType
from shiftd.sim.managed import Manager
from shiftd.sim.store import Store

Obj = dict[str, Any]

# Who seeds and edits the benchmark's objects: ``kubectl apply``, as a user would.
KUBECTL = Manager("kubectl-client-side-apply")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def applied(body: Obj) -> Obj:
    """``body`` as ``kubectl apply`` sends it: with itself in the last-applied annotation."""
    annotations = body["metadata"].setdefault("annotations", {})
    annotations.pop(LAST_APPLIED, None)
    annotations[LAST_APPLIED] = orjson.dumps(body).decode() + "\n"
    return body

# The Rollout's steps: a timed pause the benchmark ends for every Rollout at once, then a
# setWeight whose write is measured, then an indefinite pause to idle in.
STEPS: list[Obj] = [
    {"setWeight": 10},
    {"pause": {"duration": "60s"}},
    {"setWeight": 20},
    {"pause": {}},
    {"setWeight": 50},
    {"pause": {"duration": "60s"}},
]


def _service(name: str, app: str) -> Obj:
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"ports": [{"port": 80, "targetPort": "http", "protocol": "TCP",
                            "name": "http"}],
                 "selector": {"app": app}},
    }


def _virtual_service(name: str) -> Obj:
    return {
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": f"{name}-vsvc"},
        "spec": {
            "gateways": [f"{name}-gateway"], "hosts": ["*"],
            "http": [{
                "name": "primary", "match": [{"uri": {"prefix": "/"}}],
                "route": [{"destination": {"host": f"{name}-stable"}, "weight": 100},
                          {"destination": {"host": f"{name}-canary"}, "weight": 0}],
            }],
        },
    }


def _rollout(name: str, image: str) -> Obj:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": name},
        "spec": {
            "replicas": 1, "revisionHistoryLimit": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name},
                             "annotations": {"sidecar.istio.io/inject": "true"}},
                "spec": {"containers": [{
                    "name": "app", "image": image,
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"requests": {"memory": "32Mi", "cpu": "5m"}},
                }]},
            },
            "strategy": {"canary": {
                "canaryService": f"{name}-canary", "stableService": f"{name}-stable",
                "trafficRouting": {"istio": {"virtualService": {
                    "name": f"{name}-vsvc", "routes": ["primary"]}}},
                "steps": STEPS,
            }},
        },
    }


def rollout_name(index: int) -> str:
    return f"bench-{index:05d}"


class Control:
    """The control API's handlers over one emulator."""

    def __init__(self, api: ApiEmulator) -> None:
        self._api = api
        self._store: Store = api.store
        self._profiler: cProfile.Profile | None = None

    def _type(self, group: str, version: str, plural: str) -> ResourceType:
        found = self._store.registry.lookup(group, version, plural)
        assert found is not None, plural
        return found

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/seed", self.seed)
        app.router.add_post("/set-image", self.set_image)
        app.router.add_get("/summary", self.summary)
        app.router.add_get("/requests", self.requests)
        app.router.add_get("/usage", self.usage)
        app.router.add_post("/profile", self.profile)
        return app

    async def profile(self, request: web.Request) -> web.Response:
        """``{"start": true}`` starts cProfile; ``{"dump": PATH}`` stops it and writes pstats."""
        body = await request.json()
        if body.get("start"):
            self._profiler = cProfile.Profile()
            self._profiler.enable()
        elif self._profiler is not None:
            self._profiler.disable()
            self._profiler.dump_stats(str(body["dump"]))
            self._profiler = None
        return _json({})

    async def seed(self, request: web.Request) -> web.Response:
        body = await request.json()
        count, namespace, image = int(body["count"]), str(body["namespace"]), str(body["image"])
        services = self._type("", "v1", "services")
        vss = self._type("networking.istio.io", "v1beta1", "virtualservices")
        rollouts = self._type("argoproj.io", "v1alpha1", "rollouts")
        for index in range(count):
            name = rollout_name(index)
            for suffix in ("canary", "stable"):
                self._store.create(services, namespace,
                                   applied(_service(f"{name}-{suffix}", name)), "v1",
                                   manager=KUBECTL)
            self._store.create(vss, namespace, applied(_virtual_service(name)), "v1beta1",
                               manager=KUBECTL)
            self._store.create(rollouts, namespace, applied(_rollout(name, image)), "v1alpha1",
                               manager=KUBECTL)
        return _json({"created": count})

    async def set_image(self, request: web.Request) -> web.Response:
        image = str((await request.json())["image"])
        rollouts = self._type("argoproj.io", "v1alpha1", "rollouts")
        items, _ = self._store.list(rollouts, None, lambda obj: True)
        for obj in items:
            meta = obj["metadata"]
            body = orjson.loads(orjson.dumps(obj))
            body["spec"]["template"]["spec"]["containers"][0]["image"] = image
            configuration = orjson.loads(body["metadata"]["annotations"][LAST_APPLIED])
            configuration["spec"]["template"]["spec"]["containers"][0]["image"] = image
            body["metadata"]["annotations"][LAST_APPLIED] = \
                orjson.dumps(configuration).decode() + "\n"
            self._store.update(rollouts, meta["namespace"], meta["name"], body,
                               version="v1alpha1", manager=KUBECTL)
        return _json({"updated": len(items)})

    async def summary(self, request: web.Request) -> web.Response:
        rollouts = self._type("argoproj.io", "v1alpha1", "rollouts")
        vss = self._type("networking.istio.io", "v1beta1", "virtualservices")
        phases: Counter[str] = Counter()
        steps: Counter[str] = Counter()
        pause_starts: set[str] = set()
        paused_at: Counter[str] = Counter()
        items, _ = self._store.list(rollouts, None, lambda obj: True)
        managed = sum(1 for obj in items if obj["metadata"].get("managedFields"))
        for obj in items:
            status = obj.get("status") or {}
            phase = str(status.get("phase"))
            step = str(status.get("currentStepIndex"))
            phases[phase] += 1
            steps[step] += 1
            for condition in status.get("pauseConditions") or []:
                pause_starts.add(str(condition.get("startTime")))
            if phase == "Paused":
                paused_at[step] += 1
        weights: Counter[str] = Counter()
        services, _ = self._store.list(vss, None, lambda obj: True)
        for vs in services:
            route = vs["spec"]["http"][0]["route"]
            weights[str(route[1].get("weight", 0))] += 1
        return _json({
            "rollouts": len(items), "managed_fields": managed, "phases": phases,
            "steps": steps, "paused_at": paused_at,
            "pause_starts": sorted(pause_starts), "canary_weights": weights,
        })

    async def requests(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        log = self._api.request_log
        rows = [[r.method, r.path, r.status, r.watch, r.at] for r in log[since:]]
        return _json({"next": since + len(rows), "rows": rows})

    async def usage(self, request: web.Request) -> web.Response:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return _json({"cpu_seconds": usage.ru_utime + usage.ru_stime,
                      "max_rss_kib": usage.ru_maxrss})


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def _until_told_to_stop() -> None:
    async def stdin_closed() -> None:
        await anyio.to_thread.run_sync(sys.stdin.read, abandon_on_cancel=True)

    async with anyio.create_task_group() as group:
        async def watch_stdin() -> None:
            await stdin_closed()
            group.cancel_scope.cancel()

        group.start_soon(watch_stdin)
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                group.cancel_scope.cancel()


async def serve(*, host: str, port: int, control_port: int, kubeconfig: Path,
                namespace: str, tls: bool) -> None:
    namespaces: tuple[str, ...] = ("default", "kube-system", "kube-public", "kube-node-lease")
    if namespace not in namespaces:
        namespaces = (*namespaces, namespace)
    async with ApiEmulator(default_crd_files(), host=host, port=port,
                           namespaces=namespaces, tls=tls) as api:
        api.write_kubeconfig(kubeconfig)
        runner = web.AppRunner(Control(api).app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, control_port)
        await site.start()
        bound = runner.addresses[0][1]
        try:
            async with ApiClient(api.configuration()) as api_client, \
                    anyio.create_task_group() as group:
                await group.start(FakeKubelet(api_client, namespaces=[namespace]).run)
                print(orjson.dumps({"api": api.url, "control": f"http://{host}:{bound}",
                                    "kubeconfig": str(kubeconfig)}).decode(), flush=True)
                await _until_told_to_stop()
                group.cancel_scope.cancel()
        finally:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="API port (0: a free one)")
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--namespace", default="bench")
    parser.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True,
                        help="serve the API over HTTPS (default) or plain HTTP")
    args = parser.parse_args()
    anyio.run(lambda: serve(host=args.host, port=args.port, control_port=args.control_port,
                            kubeconfig=args.kubeconfig, namespace=args.namespace,
                            tls=args.tls))


if __name__ == "__main__":
    main()
