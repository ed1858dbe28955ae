"""What the client puts on the wire for each request, and what it reads of an answer unparsed.

Per request, the client needs headers (kubernetes_asyncio's default headers, the content
type and the bearer token) and a URL. Both used to be rebuilt from scratch for every request
(a merged dict, kubernetes_asyncio's ``update_params_for_auth`` coroutine chain, a URL string
that aiohttp parsed and quoted again); at a thousand Rollouts a step that costs more than
the request's own bytes. ``RequestHeaders`` keeps one headers dict per content type and
rebuilds it only when the token changed; ``request_url`` builds an already-encoded
``yarl.URL``.

``object_version`` reads the ``metadata.resourceVersion`` of a JSON object without parsing
it, so that an answer the cache already holds need not be parsed (see ``KubeClient``).
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, TypeAlias, cast
from urllib.parse import urlencode

from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config
from yarl import URL

from shiftd.kube.resources import ResourceKind

PatchType = Literal["merge", "json", "strategic", "apply"]
PATCH_CONTENT_TYPES: MappingProxyType[str, str] = MappingProxyType(
    {
        "merge": "application/merge-patch+json",
        "json": "application/json-patch+json",
        "strategic": "application/strategic-merge-patch+json",
        # JSON is YAML, so an apply configuration can be sent as the JSON dict it is.
        "apply": "application/apply-patch+yaml",
    }
)
# (kind, namespace, name, resourceVersion) -> the cached object when it is at that version
CachedAnswers: TypeAlias = Callable[[ResourceKind, str | None, str, str],
                                    dict[str, Any] | None]


class Target(NamedTuple):
    """The object a write changes, whose answer the cache may already hold."""

    kind: ResourceKind
    namespace: str | None
    name: str

# Characters a path may hold and be sent as is; anything else is quoted by yarl as before.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9._~/:@!$&'()*+,;=-]*")
_VERSION_KEY = b'"resourceVersion":"'


class RequestHeaders:
    """The headers of every request with one content type, as kubernetes_asyncio builds
    them: its ``default_headers``, ``Accept``, ``Content-Type`` and the ``BearerToken``
    (through its refresh hook when the configuration has one, e.g. in-cluster, whose token
    file is re-read once it expires). The token is read again for every request (a hook
    may change it, and kubeconfig's exec and gcp refresh tasks replace it in place); only
    the dict is reused while the token is the same."""

    def __init__(self, configuration: k8s_client.Configuration,
                 default_headers: Mapping[str, str]) -> None:
        self._configuration = configuration
        self._base = {**default_headers, "Accept": "application/json"}
        self._authorization: str | None = None
        self._by_content_type: dict[str, dict[str, str]] = {}
        self._blocks: dict[str, bytes] = {}  # the same, as HTTP/1.1 header lines

    async def for_content_type(self, content_type: str) -> Mapping[str, str]:
        """The headers to send (not to be changed: they are shared between requests)."""
        configuration = self._configuration
        hook = configuration.refresh_api_key_hook
        if hook is not None:
            refreshed = cast(Callable[[k8s_client.Configuration], object], hook)(configuration)
            if asyncio.iscoroutine(refreshed):
                await refreshed
        authorization = _bearer(configuration)
        if authorization != self._authorization:
            self._authorization = authorization
            self._by_content_type.clear()
            self._blocks.clear()
        headers = self._by_content_type.get(content_type)
        if headers is None:
            headers = {**self._base, "Content-Type": content_type}
            if authorization is not None:
                headers["authorization"] = authorization
            self._by_content_type[content_type] = headers
        return headers


    async def block_for_content_type(self, content_type: str) -> bytes:
        """The same headers as HTTP/1.1 header lines (each ending in CRLF), plus
        ``Accept-Encoding: gzip`` as aiohttp sends it, for :mod:`shiftd.kube.connections`."""
        headers = await self.for_content_type(content_type)
        block = self._blocks.get(content_type)
        if block is None:
            lines = [f"{name}: {value}\r\n" for name, value in
                     {**headers, "Accept-Encoding": "gzip"}.items()]
            if any("\r" in line[:-2] or "\n" in line[:-2] for line in lines):
                raise ValueError("a request header holds a line break")  # as aiohttp refuses
            block = self._blocks[content_type] = "".join(lines).encode("latin-1")
        return block


async def load_configuration(*, kubeconfig: str | None, context: str | None,
                             in_cluster: bool) -> k8s_client.Configuration:
    """kubernetes_asyncio's configuration for the in-cluster service account, or a kubeconfig
    file (``None``: ``$KUBECONFIG`` or ~/.kube/config) and context (``None``: its current
    one)."""
    configuration = k8s_client.Configuration()
    if in_cluster:
        k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration)
    else:
        await k8s_config.load_kube_config(config_file=kubeconfig, context=context,
                                          client_configuration=configuration,
                                          persist_config=False)
    return configuration


def _bearer(configuration: k8s_client.Configuration) -> str | None:
    """The ``authorization`` value, as ``Configuration.get_api_key_with_prefix`` spells it."""
    key = configuration.api_key.get("BearerToken")
    if not key:
        return None
    prefix = configuration.api_key_prefix.get("BearerToken")
    return f"{prefix} {key}" if prefix else str(key)


@functools.lru_cache(maxsize=256)
def _encoded(query: tuple[tuple[str, str], ...]) -> str:
    """``urlencode(query)``, remembered: every write sends the same ``fieldManager`` query
    (encoding it, about 1 us, was most of building a request's URL); watch queries differ
    (their resourceVersion) and only pass through."""
    return urlencode(query)


def request_url(host: str, path: str, query: Sequence[tuple[str, str]]) -> URL:
    """``host + path`` with the query encoded; handed to aiohttp already encoded when the
    path needs no quoting (API paths are DNS names and slashes), else quoted as before."""
    url = host + path
    if query:
        url += "?" + _encoded(tuple(query))
    if _PLAIN_PATH.fullmatch(path):
        return URL(url, encoded=True)
    return URL(url)


def request_target(path: str, query: Sequence[tuple[str, str]]) -> str:
    """The request line's target for ``path`` and ``query``, encoded as ``request_url``
    encodes it."""
    if not _PLAIN_PATH.fullmatch(path):
        return request_url("http://host", path, query).raw_path_qs
    return path + "?" + _encoded(tuple(query)) if query else path


def object_version(document: bytes) -> str | None:
    """The ``metadata.resourceVersion`` of a JSON object the API server sent, read without
    parsing it; ``None`` when that is not certain (then parse it).

    Certain means: ``"resourceVersion":"`` occurs exactly once and is not preceded by a
    backslash, and its value holds no escape. Inside a JSON string every quote is escaped,
    so an unescaped occurrence is a key with a string value; an object the server stores
    always has ``metadata.resourceVersion``, so when there is only one such key, it is that
    one. Anything else (several — an object reference in the status, say — or none) is
    left to the parser.
    """
    start = document.find(_VERSION_KEY)
    if start <= 0 or document.find(_VERSION_KEY, start + 1) != -1:
        return None
    if document[start - 1] == 0x5C:  # a backslash: the key may be a string's tail
        return None
    begin = start + len(_VERSION_KEY)
    end = document.find(b'"', begin)
    if end < 0:
        return None
    value = document[begin:end]
    if b"\\" in value:
        return None
    return value.decode("ascii", "replace")


__all__ = ["PATCH_CONTENT_TYPES", "CachedAnswers", "PatchType", "RequestHeaders", "Target",
           "load_configuration", "object_version", "request_target", "request_url"]
