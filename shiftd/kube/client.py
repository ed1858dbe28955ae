"""The Kubernetes API client: raw-JSON REST and watch over kubernetes_asyncio's configuration.

kubernetes_asyncio supplies the connection settings (kubeconfig or in-cluster configuration,
TLS, bearer tokens and their refresh). Requests go over the client's own keep-alive HTTP/1.1
connections (:mod:`shiftd.kube.connections`), or through an aiohttp session when a proxy is
configured; watches always stream through aiohttp. Headers and URLs: :mod:`shiftd.kube.wire`.
Bodies are parsed with orjson into plain dicts; typed models are deliberately not used (they
drop fields they do not know, and Argo and Istio custom resources are all unknown fields).
Every request has a timeout, takes a token from the QPS/burst bucket (watches excepted), and
is reported once to ``on_request(verb, status_code)`` (0 when no HTTP answer came). Failures
raise the exceptions of :mod:`shiftd.kube.errors`, and are sent again as
:mod:`shiftd.kube.retrying` allows (reads on any transport failure, 429 or 5xx; writes on 429,
5xx or no connection; never a 409). A response abandoned before its end has its connection
aborted, so no TLS socket outlives the client. With a cache to ask (``reuse_cached_answers``),
a written object is parsed once (:mod:`shiftd.kube.answers`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from types import TracebackType
from typing import Any, Literal, Self, TypeAlias

import aiohttp
import orjson
from kubernetes_asyncio import client as k8s_client
from yarl import URL

from shiftd.kube.answers import ParseOnce, RememberAnswer, parse_lines
from shiftd.kube.connections import Answer, ConnectionPool, http1_request
from shiftd.kube.errors import (
    CannotConnect,
    ConnectionFailed,
    NotFound,
    RequestTimeout,
    TransportError,
    error_from_response,
)
from shiftd.kube.ratelimit import TokenBucket
from shiftd.kube.resources import POD, ResourceKind
from shiftd.kube.retrying import RetryPolicy, send_retried
from shiftd.kube.transport import abandon, proxy_for, read_answer, read_body, read_chunk
from shiftd.kube.watchstream import JsonLinesDecoder, WatchEvent, WatchEventType, watch_event
from shiftd.kube.wire import (
    PATCH_CONTENT_TYPES,
    CachedAnswers,
    PatchType,
    RequestHeaders,
    Target,
    load_configuration,
    object_version,
    request_target,
    request_url,
)

__all__ = [
    "CachedAnswers",
    "JsonLinesDecoder",
    "JsonObject",
    "KubeClient",
    "PatchType",
    "RequestHook",
    "WatchEvent",
    "WatchEventType",
]

logger = logging.getLogger(__name__)

JsonObject: TypeAlias = dict[str, Any]
ObjectList: TypeAlias = list[JsonObject]
Query: TypeAlias = list[tuple[str, str]]
Verb = Literal["get", "list", "watch", "create", "update", "patch", "delete"]
RequestHook: TypeAlias = Callable[[str, int], None]

# A watch whose server-side timeout has passed by this much without the server closing it
# is treated as a dead connection.
_WATCH_READ_GRACE = 30.0
_LIST_PAGE_SIZE = 500


class KubeClient:
    """Talks to one API server. Objects in and out are plain dicts as the API spells them.

    Create it inside a running event loop (it opens an aiohttp session) and close it with
    ``close()`` or by using it as an async context manager.
    """

    def __init__(
        self,
        configuration: k8s_client.Configuration,
        *,
        qps: float = 20.0,
        burst: int = 40,
        on_request: RequestHook | None = None,
        request_timeout: float = 30.0,
        watch_timeout: int = 290,
        field_manager: str = "shiftd",
        retry_policy: RetryPolicy | None = None,
        user_agent: str = "shiftd",
    ) -> None:
        """``request_timeout`` bounds each non-watch request (and a watch's connect);
        ``watch_timeout`` is the server-side timeoutSeconds of a watch that gives none;
        ``retry_policy`` how often and how long apart failed requests are sent again."""
        self._api = k8s_client.ApiClient(configuration)
        self._api.user_agent = user_agent
        rest = self._api.rest_client
        # Requests go straight to an aiohttp session over kubernetes_asyncio's connector (its
        # TLS setup) instead of through ApiClient.call_api, whose session trusts the
        # environment: that costs two thread-pool hops per request (a ~/.netrc lookup and the
        # proxy variables), which with a thousand Rollouts contend for the GIL and dominate.
        # The proxy the environment names is resolved once here instead.
        self._session = aiohttp.ClientSession(
            connector=rest.pool_manager.connector, connector_owner=False,
            read_bufsize=2**21,  # as kubernetes_asyncio's: watch events may be large
        )
        self._host = str(configuration.host).rstrip("/")
        self._proxy, self._proxy_auth = proxy_for(self._host, rest.proxy)
        self._proxy_headers = rest.proxy_headers
        self._server_hostname = rest.server_hostname
        self._limiter = TokenBucket(qps=qps, burst=burst)
        self._on_request = on_request
        self._request_timeout = request_timeout
        self._client_timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._headers = RequestHeaders(configuration, self._api.default_headers)
        self._once: ParseOnce | None = None  # the caches, when a written object is parsed once
        self._watch_timeout = watch_timeout
        self._field_manager = field_manager
        self._retry_policy = retry_policy or RetryPolicy()
        self._streams: set[aiohttp.ClientResponse] = set()  # open watch responses
        # Every other request goes over our own keep-alive connections (far less CPU per
        # request than aiohttp: shiftd.kube.connections), unless through a proxy.
        self._pool = None if self._proxy else ConnectionPool.for_configuration(
            configuration, server_hostname=self._server_hostname,
            request_timeout=request_timeout)
        url = URL(self._host)
        self._host_line = f"Host: {url.host_port_subcomponent}\r\n".encode("latin-1")

    @classmethod
    async def from_settings(
        cls,
        *,
        kubeconfig: str | None,
        context: str | None,
        in_cluster: bool,
        qps: float,
        burst: int,
        on_request: RequestHook | None = None,
        request_timeout: float = 30.0,
        user_agent: str = "shiftd",
    ) -> KubeClient:
        """A client for the in-cluster service account, or a kubeconfig file and context.

        ``kubeconfig=None`` means the default location (``$KUBECONFIG`` or ~/.kube/config);
        ``context=None`` means its current context.
        """
        configuration = await load_configuration(kubeconfig=kubeconfig, context=context,
                                                 in_cluster=in_cluster)
        return cls(configuration, qps=qps, burst=burst, on_request=on_request,
                   request_timeout=request_timeout, user_agent=user_agent)

    def reuse_cached_answers(self, lookup: CachedAnswers, *, remember: RememberAnswer) -> None:
        """Parse each written object once: a patch or replace returns the cached copy of the
        object it wrote, unparsed, when ``lookup`` says the cache holds the version the
        server answered (its watch event came first), else ``remember``s the parsed answer
        at once, and its watch event is not parsed (:mod:`shiftd.kube.answers`). Callers
        must not change an answer, as they must not change any cached object."""
        self._once = ParseOnce(holding=lookup, remember=remember)

    async def close(self) -> None:
        """Close the connections; watches still open are abandoned (their transports
        aborted, so no TLS socket outlives the client)."""
        for response in list(self._streams):
            abandon(response)
        self._streams.clear()
        if self._pool is not None:
            self._pool.close()
        await self._session.close()
        await self._api.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- reads ---------------------------------------------------------------------------

    async def get(self, kind: ResourceKind, namespace: str | None, name: str) -> JsonObject:
        return await self._read("get", kind.object_path(namespace, name))

    async def list(
        self,
        kind: ResourceKind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[ObjectList, str]:
        """All matching objects (with apiVersion/kind filled in) and the list's resourceVersion.

        Large collections are fetched in pages; the resourceVersion is that of the snapshot
        the pages were cut from. An expired continue token raises ``Gone``.
        """
        base: Query = [("limit", str(_LIST_PAGE_SIZE))]
        if label_selector:
            base.append(("labelSelector", label_selector))
        if field_selector:
            base.append(("fieldSelector", field_selector))
        items: ObjectList = []
        resource_version = ""
        token = ""
        while True:
            query = [*base, ("continue", token)] if token else base
            page = await self._read("list", kind.collection_path(namespace), query=query)
            metadata = page.get("metadata") or {}
            resource_version = resource_version or str(metadata.get("resourceVersion") or "")
            items.extend(page.get("items") or [])
            token = str(metadata.get("continue") or "")
            if not token:
                break
        for item in items:
            item.setdefault("apiVersion", kind.api_version)
            item.setdefault("kind", kind.kind)
        return items, resource_version

    async def watch(
        self,
        kind: ResourceKind,
        namespace: str | None = None,
        *,
        resource_version: str,
        label_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
    ) -> AsyncGenerator[WatchEvent, None]:
        """Changes after ``resource_version``, until the server ends the stream.

        ``timeout_seconds=None`` uses the client's ``watch_timeout``. A Status ERROR event
        raises (``Gone`` for 410), so consumers only see ADDED/MODIFIED/DELETED/BOOKMARK.
        Close the iterator when done early: ``async with aclosing(client.watch(...))``.
        """
        server_timeout = self._watch_timeout if timeout_seconds is None else timeout_seconds
        query = [("watch", "true"), ("resourceVersion", resource_version),
                 ("timeoutSeconds", str(server_timeout))]
        if allow_bookmarks:
            query.append(("allowWatchBookmarks", "true"))
        if label_selector:
            query.append(("labelSelector", label_selector))
        timeout = aiohttp.ClientTimeout(total=None, connect=self._request_timeout,
                                        sock_read=server_timeout + _WATCH_READ_GRACE)
        response = await self._send(
            "watch", "GET", kind.collection_path(namespace), query=query, client_timeout=timeout
        )
        self._streams.add(response)
        finished = False
        try:
            if response.status >= 400:
                body = await read_body(response)
                finished = True
                raise error_from_response(response.status, body,
                                          http_reason=response.reason or "")
            decoder = JsonLinesDecoder()
            while not finished:
                chunk = await read_chunk(response)
                finished = not chunk
                lines = decoder.lines(chunk) if chunk else decoder.rest()
                for document in parse_lines(lines, kind, once=self._once):
                    yield document if isinstance(document, WatchEvent) else watch_event(
                        document, kind)
        finally:
            self._streams.discard(response)
            if finished:
                response.release()
            else:
                abandon(response)  # see shiftd.kube.transport: no SSL shutdown to wait for

    # -- writes --------------------------------------------------------------------------

    async def create(self, kind: ResourceKind, namespace: str | None, body: JsonObject, *,
                     parse_answer: bool = True) -> JsonObject:
        """POST; with ``parse_answer`` False the created object is not parsed and ``{}`` is
        returned (an Event's writer needs only to know it was written)."""
        return await self._write("create", "POST", kind.collection_path(namespace),
                                 query=self._write_query(), body=body,
                                 parse_answer=parse_answer)

    async def replace(
        self,
        kind: ResourceKind,
        namespace: str | None,
        name: str,
        body: JsonObject,
        *,
        subresource: str | None = None,
    ) -> JsonObject:
        """PUT; guarded by ``metadata.resourceVersion`` when the body carries one."""
        return await self._write("update", "PUT", kind.object_path(namespace, name, subresource),
                                 query=self._write_query(), body=body,
                                 target=Target(kind, namespace, name))

    async def patch(
        self,
        kind: ResourceKind,
        namespace: str | None,
        name: str,
        patch: JsonObject | ObjectList,
        *,
        patch_type: PatchType,
        subresource: str | None = None,
        parse_answer: bool = True,
    ) -> JsonObject:
        """PATCH with the content type of ``patch_type``.

        ``"apply"`` is server-side apply as field manager ``shiftd`` with ``force=true``
        (a controller owns the fields it applies). Custom resources answer ``"strategic"``
        with ``UnsupportedMediaType``. With ``parse_answer`` False the patched object is not
        parsed (nor cached) and ``{}`` is returned.
        """
        query = self._write_query()
        if patch_type == "apply":
            query.append(("force", "true"))
        return await self._write("patch", "PATCH", kind.object_path(namespace, name, subresource),
                                 query=query, body=patch,
                                 content_type=PATCH_CONTENT_TYPES[patch_type],
                                 target=Target(kind, namespace, name),
                                 parse_answer=parse_answer)

    async def delete(
        self,
        kind: ResourceKind,
        namespace: str | None,
        name: str,
        *,
        propagation_policy: Literal["Foreground", "Background", "Orphan"] | None = None,
    ) -> None:
        query = [("propagationPolicy", propagation_policy)] if propagation_policy else []
        await self._write("delete", "DELETE", kind.object_path(namespace, name), query=query)

    async def evict(self, namespace: str, name: str) -> None:
        """POST a policy/v1 Eviction to ``pods/NAME/eviction``: the pod is deleted unless a
        PodDisruptionBudget forbids it now (an ``ApiError`` with status 429)."""
        body = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": name, "namespace": namespace}}
        await self._request("create", "POST", POD.object_path(namespace, name, "eviction"),
                            query=self._write_query(), body=body)

    async def serves(self, kind: ResourceKind) -> bool:
        """Whether the API server serves ``kind`` (discovery of its group/version): False when
        the group/version or the resource is unknown, as on a cluster without its CRD."""
        try:
            resources = await self._read("get", kind.api_prefix)
        except NotFound:
            return False
        return any(resource.get("name") == kind.plural
                   for resource in resources.get("resources") or [])

    # -- plumbing ------------------------------------------------------------------------

    def _write_query(self) -> Query:
        return [("fieldManager", self._field_manager)]

    async def _read(
        self, verb: Verb, path: str, *, query: Sequence[tuple[str, str]] = ()
    ) -> JsonObject:
        """A GET, retried as reads may be (it is idempotent)."""
        return await send_retried(lambda: self._request(verb, "GET", path, query=query),
                                  self._retry_policy, write=False)

    async def _write(
        self,
        verb: Verb,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: JsonObject | ObjectList | None = None,
        content_type: str = "application/json",
        target: Target | None = None,
        parse_answer: bool = True,
    ) -> JsonObject:
        """A write, retried only as writes may be (never on a 409: the caller replans)."""
        return await send_retried(
            lambda: self._request(verb, method, path, query=query, body=body,
                                  content_type=content_type, target=target,
                                  parse_answer=parse_answer),
            self._retry_policy, write=True)

    async def _request(
        self,
        verb: Verb,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: JsonObject | ObjectList | None = None,
        content_type: str = "application/json",
        target: Target | None = None,
        parse_answer: bool = True,
    ) -> JsonObject:
        """One rate-limited request whose JSON response body is returned (for a ``target``
        whose answered version is cached, the cached copy: see ``reuse_cached_answers``;
        without ``parse_answer``, ``{}``: a success's body is not parsed)."""
        await self._limiter.acquire()
        if self._pool is None:  # through a proxy
            answer = await read_answer(await self._send(
                verb, method, path, query=query, body=body, content_type=content_type,
                client_timeout=self._client_timeout))
        else:
            answer = await self._exchange(self._pool, verb, method, path, query=query,
                                          body=body, content_type=content_type)
        data = answer.body
        if answer.status >= 400:
            raise error_from_response(answer.status, data, http_reason=answer.reason,
                                      retry_after=answer.headers.get("retry-after"))
        if not data or not parse_answer:
            return {}
        once, version = self._once, None
        if target is not None and once is not None:
            version = object_version(data)
            cached = None if version is None else once.holding(*target, version)
            if cached is not None:
                return cached
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise TransportError(f"{method} {path}: response is not JSON: {exc}") from exc
        if once is not None and version is not None and target is not None \
                and isinstance(parsed, dict):
            once.parsed(target, version, parsed)  # cached now: its watch event is not parsed
        return parsed if isinstance(parsed, dict) else {"value": parsed}

    async def _exchange(self, pool: ConnectionPool, verb: Verb, method: str, path: str, *,
                        query: Sequence[tuple[str, str]], body: JsonObject | ObjectList | None,
                        content_type: str) -> Answer:
        """One request over the pool, with the headers kubernetes_asyncio would send."""
        head = self._host_line + await self._headers.block_for_content_type(content_type)
        payload = None if body is None else orjson.dumps(body)
        try:
            answer = await pool.request(
                http1_request(method, request_target(path, query), head, payload))
        except TransportError as error:
            self._report(verb, 0)
            raise type(error)(f"{method} {path}: {error}") from error
        self._report(verb, answer.status)
        return answer

    async def _send(
        self,
        verb: Verb,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]],
        client_timeout: aiohttp.ClientTimeout,
        body: JsonObject | ObjectList | None = None,
        content_type: str = "application/json",
    ) -> aiohttp.ClientResponse:
        """Send a request and return the open response once its status line has arrived.

        Headers and auth as kubernetes_asyncio sends them (``default_headers``, the
        configured BearerToken with its refresh hook: :mod:`shiftd.kube.wire`); the body
        is serialised with orjson.
        """
        try:
            headers = await self._headers.for_content_type(content_type)
            response: aiohttp.ClientResponse = await self._session.request(
                method,
                request_url(self._host, path, query),
                headers=headers,
                data=orjson.dumps(body) if body is not None else None,
                timeout=client_timeout,
                proxy=self._proxy,
                proxy_auth=self._proxy_auth,
                proxy_headers=self._proxy_headers,
                server_hostname=self._server_hostname,
            )
        except TimeoutError as exc:
            self._report(verb, 0)
            raise RequestTimeout(f"{method} {path}: timed out") from exc
        except aiohttp.ClientConnectorError as exc:
            self._report(verb, 0)
            raise CannotConnect(f"{method} {path}: {exc}") from exc
        except aiohttp.ClientError as exc:
            self._report(verb, 0)
            raise ConnectionFailed(f"{method} {path}: {exc}") from exc
        self._report(verb, response.status)
        return response

    def _report(self, verb: Verb, status: int) -> None:
        if self._on_request is not None:
            self._on_request(verb, status)

