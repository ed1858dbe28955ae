"""The HTTP face of the emulator: kube-apiserver routes, verbs, patches and watches on aiohttp.

``ApiServer`` authenticates and authorizes each request (``rbac``, when configured), turns
it into ``Store`` operations and their results into the JSON a real server sends: objects with
the requested ``apiVersion``, paged ``<Kind>List`` documents (``limit``, ``continue``,
``remainingItemCount``), discovery documents, ``Status`` errors and delete results, the plain
text 404 of a path no API serves, server-side apply with its field-ownership conflicts
(``managed``), and watch streams (``watching``). It also keeps the test hooks' state: the
request log, and the ``faults`` injector (``faults``) consulted before each request.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml
from aiohttp import web

from shiftd.sim import eviction, patching
from shiftd.sim.errors import (
    ApiStatusError,
    bad_request,
    deleted,
    not_found,
    status_body,
)
from shiftd.sim.faults import FaultInjector
from shiftd.sim.kinds import ResourceType
from shiftd.sim.managed import (
    Manager,
    applied_fields,
    apply_conflicts,
    conflict_error,
    manager_name,
)
from shiftd.sim.rbac import Authorizer, request_attributes
from shiftd.sim.selectors import Predicate, field_selector, label_selector
from shiftd.sim.store import Store
from shiftd.sim.watching import WatchTarget, serve_watch

Obj = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_TRUE = frozenset({"true", "1"})
_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list."
)
# Built-in kinds whose delete is graceful on a real server, so it answers with the object.
_DELETE_RETURNS_OBJECT = frozenset({"Pod", "Namespace"})
_STRATEGIC_ON_CUSTOM = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request the emulator answered, for tests and benchmarks to count.

    ``at`` is ``time.monotonic()`` when the answer was ready (for a watch: when it ended);
    the monotonic clock is shared by every process on the host, so a benchmark in another
    process can compare it with its own readings.
    """

    method: str
    path: str
    content_type: str
    status: int
    watch: bool = False
    user_agent: str = ""
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class _Target:
    """What a resource URL addresses."""

    rtype: ResourceType
    version: str
    namespace: str | None
    name: str | None
    subresource: str | None


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _not_found_path() -> ApiStatusError:
    return ApiStatusError(404, "the server could not find the requested resource")


def _page_not_found() -> web.Response:
    """What a real server's mux answers for a path no API serves: plain text, not a Status."""
    return web.Response(body=b"404 page not found\n", status=404,
                        content_type="text/plain", charset="utf-8")


class ApiServer:
    """The aiohttp application serving one ``Store``."""

    def __init__(self, store: Store, *, bookmark_interval: float = 1.0,
                 authorizer: Authorizer | None = None, fault_seed: int = 0) -> None:
        self.store = store
        self.bookmark_interval = bookmark_interval
        self.authorizer = authorizer
        self.request_log: list[LoggedRequest] = []
        self.faults = FaultInjector(seed=fault_seed)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024**2)
        app.router.add_get("/version{slash:/?}", self._version)
        app.router.add_get("/api{slash:/?}", self._core_versions)
        app.router.add_get("/apis{slash:/?}", self._groups)
        app.router.add_route("*", "/api/{version}{rest:(/.*)?}", self._core)
        app.router.add_route("*", "/apis/{group}{rest:(/.*)?}", self._named)
        return app

    # --- middleware: errors, logging, injected failures --------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        watch = request.query.get("watch", "").lower() in _TRUE
        try:
            user = self._authorize(request, watch=watch)
            response = (await self.faults.intercept(request, watch=watch, user=user)
                        or await handler(request))
        except ApiStatusError as error:
            response = _json(error.body, error.code)
        except web.HTTPNotFound:
            response = _page_not_found()
        except web.HTTPMethodNotAllowed:
            response = _json(status_body(405, f"the server does not allow this method on the "
                                              f"requested resource ({request.method})"), 405)
        self.request_log.append(LoggedRequest(
            request.method, request.path, request.headers.get("Content-Type", ""),
            response.status, watch, request.headers.get("User-Agent", ""),
        ))
        return response

    def _authorize(self, request: web.Request, *, watch: bool) -> str:
        """The authenticated user's name ("" for the administrator, or without RBAC)."""
        if self.authorizer is None:
            return ""
        user = self.authorizer.authenticate(request.headers.get("Authorization"))
        if user is None:
            return ""  # the administrator
        attributes = request_attributes(request.method, request.path, watch=watch)
        if attributes is not None:
            self.authorizer.authorize(user, attributes)
        return user.name

    # --- discovery ---------------------------------------------------------------------------

    async def _version(self, request: web.Request) -> web.Response:
        return _json({
            "major": "1", "minor": "24", "gitVersion": "v1.24.17-shiftd-emulator",
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2023-08-23T00:00:00Z", "goVersion": "go1.20.7", "compiler": "gc",
            "platform": "linux/amd64",
        })

    async def _core_versions(self, request: web.Request) -> web.Response:
        return _json({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}]})

    async def _groups(self, request: web.Request) -> web.Response:
        return _json(self.store.registry.api_group_list())

    async def _core(self, request: web.Request) -> web.StreamResponse:
        return await self._resource("", request.match_info["version"], request)

    async def _named(self, request: web.Request) -> web.StreamResponse:
        group = request.match_info["group"]
        rest = request.match_info["rest"].strip("/")
        if not rest:
            if request.method != "GET":
                raise web.HTTPMethodNotAllowed(request.method, ["GET"])
            document = self.store.registry.api_group(group)
            if document is None:
                raise web.HTTPNotFound()
            return _json(document)
        version, _, remainder = rest.partition("/")
        return await self._resource(group, version, request, remainder)

    async def _resource(
        self, group: str, version: str, request: web.Request, rest: str | None = None
    ) -> web.StreamResponse:
        if rest is None:
            rest = request.match_info["rest"].strip("/")
        if not rest:
            if request.method != "GET":
                raise web.HTTPMethodNotAllowed(request.method, ["GET"])
            document = self.store.registry.resource_list(group, version)
            if document is None:
                raise web.HTTPNotFound()
            return _json(document)
        target = self._target(group, version, rest.split("/"))
        return await self._dispatch(request, target)

    def _target(self, group: str, version: str, segments: list[str]) -> _Target:
        namespace: str | None = None
        if (segments[0] == "namespaces" and len(segments) >= 3
                and not (len(segments) == 3 and segments[2] in _NAMESPACE_SUBRESOURCES)):
            namespace, segments = segments[1], segments[2:]
        if len(segments) > 3:
            raise _not_found_path()
        rtype = self.store.registry.lookup(group, version, segments[0])
        if rtype is None or (namespace is not None and not rtype.namespaced):
            raise web.HTTPNotFound()  # no API serves this path
        name = segments[1] if len(segments) > 1 else None
        subresource = segments[2] if len(segments) > 2 else None
        if subresource is not None and not eviction.is_eviction(rtype, subresource) and (
                subresource != "status" or not rtype.status_subresource):
            raise _not_found_path()
        return _Target(rtype, version, namespace, name, subresource)

    # --- verbs -------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request, target: _Target) -> web.StreamResponse:
        method = request.method
        if target.name is None:
            if method == "GET":
                if request.query.get("watch", "").lower() in _TRUE:
                    return await self._watch(request, target)
                return self._list(request, target)
            if method == "POST" and not (target.rtype.namespaced and target.namespace is None):
                return self._create(target, await self._body(request), _manager(request,
                                                                                 target))
            if method == "DELETE":
                return self._delete_collection(request, target)
            raise web.HTTPMethodNotAllowed(method, ["GET", "POST", "DELETE"])
        if eviction.is_eviction(target.rtype, target.subresource):
            if method != "POST":
                raise web.HTTPMethodNotAllowed(method, ["POST"])
            return _json(eviction.evict(self.store, target.rtype, namespace=target.namespace,
                                        name=target.name, body=await self._body(request)), 201)
        if method == "GET":
            obj = self.store.get(target.rtype, target.namespace, target.name)
            return _json(self._render(obj, target))
        if method == "PUT":
            obj = self.store.update(
                target.rtype, target.namespace, target.name, await self._body(request),
                version=target.version, subresource=target.subresource,
                manager=_manager(request, target),
            )
            return _json(self._render(obj, target))
        if method == "PATCH":
            return await self._patch(request, target)
        if method == "DELETE" and target.subresource is None:
            return await self._delete(request, target)
        raise web.HTTPMethodNotAllowed(method, ["GET", "PUT", "PATCH", "DELETE"])

    async def _body(self, request: web.Request) -> Obj:
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise bad_request(f"the body of the request is not valid JSON: {error}") from error
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        return body

    def _render(self, obj: Obj, target: _Target) -> Obj:
        return {**obj, "apiVersion": target.rtype.api_version(target.version)}

    def _create(self, target: _Target, body: Obj, manager: Manager) -> web.Response:
        if target.subresource is not None:
            raise web.HTTPMethodNotAllowed("POST", ["GET", "PUT", "PATCH"])
        obj = self.store.create(target.rtype, target.namespace, body, target.version,
                                manager=manager)
        return _json(self._render(obj, target), 201)

    def _predicate(self, request: web.Request, target: _Target) -> Predicate:
        labels = label_selector(request.query.get("labelSelector"))
        fields = field_selector(request.query.get("fieldSelector"), target.rtype.kind)
        return lambda obj: labels(obj) and fields(obj)

    def _list(self, request: web.Request, target: _Target) -> web.Response:
        query = request.query
        items, version = self.store.list(
            target.rtype, target.namespace, self._predicate(request, target)
        )
        metadata: Obj = {"resourceVersion": str(version)}
        if target.rtype.custom:
            metadata["continue"] = ""  # unstructured lists always carry it
        start, version = self._continue_from(query.get("continue", ""), target, version)
        metadata["resourceVersion"] = str(version)
        if start:
            items = [item for item in items if _list_key(item) > start]
        limit = _limit(query.get("limit", ""))
        if limit and len(items) > limit:
            remaining = len(items) - limit
            items = items[:limit]
            metadata["continue"] = _continue_token(version, _list_key(items[-1]))
            if not (query.get("labelSelector") or query.get("fieldSelector")):
                metadata["remainingItemCount"] = remaining
        if target.rtype.custom:
            rendered = [self._render(item, target) for item in items]
        else:  # real servers leave apiVersion/kind out of built-in list items
            rendered = [
                {k: v for k, v in item.items() if k not in ("apiVersion", "kind")}
                for item in items
            ]
        return _json({
            "kind": f"{target.rtype.kind}List",
            "apiVersion": target.rtype.api_version(target.version),
            "metadata": metadata,
            "items": rendered,
        })

    def _continue_from(self, token: str, target: _Target, version: int) -> tuple[str, int]:
        """Where a continued list resumes, and the version its first page was read at."""
        if not token:
            return "", version
        try:
            decoded = orjson.loads(base64.b64decode(token, validate=True))
            start, first_version = str(decoded["start"]).rstrip("\x00"), int(decoded["rv"])
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as error:
            raise bad_request(f"continue key is not valid: {error}") from error
        if first_version < self.store.oldest_version(target.rtype):
            raise ApiStatusError(410, _CONTINUE_EXPIRED, reason="Expired")
        return start, first_version

    async def _patch(self, request: web.Request, target: _Target) -> web.Response:
        assert target.name is not None
        content_type = request.content_type
        if content_type not in patching.PATCH_TYPES:
            raise ApiStatusError(415, f"the body of the request was in an unknown format - "
                                      f"accepted media types include: "
                                      f"{', '.join(patching.PATCH_TYPES)}")
        if content_type == patching.STRATEGIC_MERGE_PATCH and target.rtype.custom:
            raise ApiStatusError(415, _STRATEGIC_ON_CUSTOM)
        raw = await request.read()
        try:
            if content_type == patching.APPLY_PATCH:
                loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
                patch = yaml.load(raw, Loader=loader)
            else:
                patch = orjson.loads(raw)
        except (orjson.JSONDecodeError, yaml.YAMLError) as error:
            raise bad_request(f"the body of the request could not be decoded: {error}") from error
        current = self.store.find(target.rtype, target.namespace, target.name)
        if content_type == patching.APPLY_PATCH:
            return self._apply(request, target, current, patch)
        if current is None:
            raise not_found(target.rtype.group, target.rtype.plural, target.name)
        document = self._render(current, target)
        if content_type == patching.JSON_PATCH:
            patched = patching.json_patch(document, patch)
        elif content_type == patching.STRATEGIC_MERGE_PATCH:
            patched = patching.strategic_merge(document, patch)
        else:
            patched = patching.merge_patch(document, patch)
        if not isinstance(patched, dict):
            raise ApiStatusError(422, "the patch turned the object into something else")
        obj = self.store.update(target.rtype, target.namespace, target.name, patched,
                                version=target.version, subresource=target.subresource,
                                manager=_manager(request, target))
        return _json(self._render(obj, target))

    def _apply(
        self, request: web.Request, target: _Target, current: Obj | None, patch: Any
    ) -> web.Response:
        """Server-side apply: create if absent, else merge the configuration, owning its
        fields; a field another manager owns with another value is a conflict (409) unless
        ``force=true``."""
        assert target.name is not None
        if not request.query.get("fieldManager"):
            raise ApiStatusError(
                422, 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                     "is required for apply patch", reason="Invalid")
        if not isinstance(patch, dict):
            raise bad_request("an apply patch must be an object")
        raw_meta = patch.get("metadata")
        meta: Obj = raw_meta if isinstance(raw_meta, dict) else {}
        if meta.get("name", target.name) != target.name:
            raise bad_request("the name of the object does not match the name on the URL")
        manager = Manager(request.query["fieldManager"], "Apply", target.subresource or "")
        applied = applied_fields(patch)
        if current is None:
            if target.subresource is not None:
                raise not_found(target.rtype.group, target.rtype.plural, target.name)
            body = {**patch, "metadata": {**meta, "name": target.name}}
            obj = self.store.create(target.rtype, target.namespace, body, target.version,
                                    manager=manager, applied=applied)
            return _json(self._render(obj, target), 201)
        document = self._render(current, target)
        conflicts = apply_conflicts(list(current["metadata"].get("managedFields") or ()),
                                    manager, applied, patch, document)
        if conflicts and request.query.get("force", "").lower() not in _TRUE:
            raise conflict_error(conflicts)
        merge = patching.merge_patch if target.rtype.custom else patching.strategic_merge
        patched = merge(document, patch)
        obj = self.store.update(target.rtype, target.namespace, target.name, patched,
                                version=target.version, subresource=target.subresource,
                                manager=manager, applied=applied, taken=conflicts)
        return _json(self._render(obj, target))

    async def _delete(self, request: web.Request, target: _Target) -> web.Response:
        assert target.name is not None
        options: Obj = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                try:
                    loaded = orjson.loads(raw)
                except orjson.JSONDecodeError as error:
                    raise bad_request(f"invalid DeleteOptions: {error}") from error
                options = loaded if isinstance(loaded, dict) else {}
        preconditions = options.get("preconditions") or {}
        propagation = (request.query.get("propagationPolicy")
                       or options.get("propagationPolicy") or "Background")
        obj = self.store.delete(
            target.rtype, target.namespace, target.name,
            precondition_uid=preconditions.get("uid"),
            precondition_rv=preconditions.get("resourceVersion"),
            propagation=propagation,
        )
        rtype = target.rtype
        gone = self.store.find(rtype, target.namespace, target.name) is None
        if gone and not rtype.custom and rtype.kind not in _DELETE_RETURNS_OBJECT:
            # Built-in kinds answer a completed delete with a Status; custom resources, and
            # objects that finalizers keep, with the object.
            meta = obj["metadata"]
            return _json(deleted(meta["name"], rtype.group, rtype.plural, meta["uid"]))
        return _json(self._render(obj, target))

    def _delete_collection(self, request: web.Request, target: _Target) -> web.Response:
        items, _ = self.store.list(target.rtype, target.namespace,
                                   self._predicate(request, target))
        deleted = []
        for item in items:
            meta = item["metadata"]
            if self.store.find(target.rtype, meta.get("namespace"), meta["name"]) is item:
                deleted.append(self._render(
                    self.store.delete(target.rtype, meta.get("namespace"), meta["name"]), target
                ))
        return _json({
            "kind": f"{target.rtype.kind}List",
            "apiVersion": target.rtype.api_version(target.version),
            "metadata": {"resourceVersion": str(self.store.resource_version)},
            "items": deleted,
        })

    # --- watch -------------------------------------------------------------------------------

    async def _watch(self, request: web.Request, target: _Target) -> web.StreamResponse:
        namespace = target.namespace if target.rtype.namespaced else None
        return await serve_watch(request, WatchTarget(
            store=self.store, rtype=target.rtype, version=target.version, namespace=namespace,
            predicate=self._predicate(request, target),
            render=lambda obj: self._render(obj, target),
            bookmark_interval=self.bookmark_interval,
            faults=self.faults.watch_plan(request, user=self._authorize(request, watch=True)),
        ))


def _manager(request: web.Request, target: _Target) -> Manager:
    name = manager_name(request.query.get("fieldManager"), request.headers.get("User-Agent"))
    return Manager(name, "Update", target.subresource or "")


def _list_key(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def _continue_token(version: int, last_key: str) -> str:
    payload = {"v": "meta.k8s.io/v1", "rv": version, "start": f"{last_key}\x00"}
    return base64.b64encode(orjson.dumps(payload)).decode("ascii")


def _limit(raw: str) -> int:
    try:
        return max(int(raw), 0) if raw else 0
    except ValueError as error:
        raise bad_request(f"invalid limit: {raw!r}") from error
