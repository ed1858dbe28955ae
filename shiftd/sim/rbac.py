"""Bearer-token authentication and an RBAC authorizer, as a kube-apiserver applies them.

``Authorizer`` is built once from tokens (each mapped to an ``EmulatedUser``) and the
ClusterRoles, ClusterRoleBindings, Roles and RoleBindings given as YAML documents. Each request
becomes ``RequestAttributes`` (verb, API group, resource, subresource, name, namespace) and is
allowed when some rule bound to the user, one of its groups or its service account grants it,
exactly as the RBAC authorizer decides: verbs, apiGroups, resources (``*``, ``res/sub``,
``*/sub``), resourceNames, and a RoleBinding's namespace. A denied request gets the 403
``Status`` a real server sends; an unknown token gets 401. The administrator's token bypasses
RBAC (a real cluster's ``system:masters``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from shiftd.sim.errors import ApiStatusError

Obj = Mapping[str, Any]

_AUTHENTICATED = "system:authenticated"
_RBAC_KINDS = frozenset({"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"})


@dataclass(frozen=True, slots=True)
class EmulatedUser:
    """Who a bearer token authenticates as."""

    name: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RequestAttributes:
    """What an RBAC rule is matched against (a resource request)."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    name: str = ""
    namespace: str = ""


@dataclass(frozen=True, slots=True)
class _Rule:
    verbs: frozenset[str]
    groups: frozenset[str]
    resources: frozenset[str]
    names: frozenset[str]

    def allows(self, request: RequestAttributes) -> bool:
        if not ({"*", request.verb} & self.verbs and {"*", request.group} & self.groups):
            return False
        if request.subresource:
            wanted = {f"{request.resource}/{request.subresource}", f"*/{request.subresource}"}
        else:
            wanted = {request.resource}
        if not ({"*"} | wanted) & self.resources:
            return False
        return not self.names or request.name in self.names


@dataclass(frozen=True, slots=True)
class _Binding:
    namespace: str  # "" for a ClusterRoleBinding: the rules apply everywhere
    users: frozenset[str]
    groups: frozenset[str]
    rules: tuple[_Rule, ...]


def _rules(role: Obj) -> tuple[_Rule, ...]:
    return tuple(
        _Rule(frozenset(rule.get("verbs") or ()), frozenset(rule.get("apiGroups") or ()),
              frozenset(rule.get("resources") or ()), frozenset(rule.get("resourceNames") or ()))
        for rule in role.get("rules") or ()
    )


def _subjects(binding: Obj) -> tuple[frozenset[str], frozenset[str]]:
    users: set[str] = set()
    groups: set[str] = set()
    for subject in binding.get("subjects") or ():
        kind, name = subject.get("kind"), subject.get("name", "")
        if kind == "User":
            users.add(name)
        elif kind == "Group":
            groups.add(name)
        elif kind == "ServiceAccount":
            namespace = subject.get("namespace") or (binding.get("metadata") or {}).get(
                "namespace", "")
            users.add(f"system:serviceaccount:{namespace}:{name}")
    return frozenset(users), frozenset(groups)


def rbac_documents(source: str | Iterable[Obj]) -> list[Obj]:
    """The RBAC objects among YAML text or parsed documents (others, e.g. a ServiceAccount,
    are skipped)."""
    documents = yaml.safe_load_all(source) if isinstance(source, str) else source
    return [d for d in documents if isinstance(d, Mapping) and d.get("kind") in _RBAC_KINDS]


@dataclass(slots=True)
class Authorizer:
    """Authenticates bearer tokens and authorizes resource requests by RBAC."""

    admin_token: str
    users: Mapping[str, EmulatedUser]
    _bindings: tuple[_Binding, ...] = field(default=())

    @classmethod
    def build(cls, *, admin_token: str, users: Mapping[str, EmulatedUser],
              documents: Sequence[Obj]) -> Authorizer:
        """Resolve every binding's role once, so a request only walks the rules."""
        cluster_roles = {d["metadata"]["name"]: d for d in documents
                         if d["kind"] == "ClusterRole"}
        roles = {(d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
                 for d in documents if d["kind"] == "Role"}
        bindings = []
        for document in documents:
            if document["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
                continue
            namespace = (document["metadata"].get("namespace", "")
                         if document["kind"] == "RoleBinding" else "")
            ref = document.get("roleRef") or {}
            role = (cluster_roles.get(ref.get("name", "")) if ref.get("kind") == "ClusterRole"
                    else roles.get((namespace, ref.get("name", ""))))
            if role is None:
                continue  # a binding to a missing role grants nothing, as on a real server
            users_, groups = _subjects(document)
            bindings.append(_Binding(namespace, users_, groups, _rules(role)))
        return cls(admin_token, dict(users), tuple(bindings))

    def authenticate(self, header: str | None) -> EmulatedUser | None:
        """The user behind an ``Authorization`` header; ``None`` for the administrator.

        Raises the 401 a real server answers for a missing or unknown token.
        """
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() == "bearer" and token == self.admin_token:
            return None
        user = self.users.get(token) if scheme.lower() == "bearer" else None
        if user is None:
            raise ApiStatusError(401, "Unauthorized", reason="Unauthorized")
        return user

    def allowed(self, user: EmulatedUser, request: RequestAttributes) -> bool:
        groups = {*user.groups, _AUTHENTICATED}
        for binding in self._bindings:
            if binding.namespace and binding.namespace != request.namespace:
                continue
            if user.name not in binding.users and not groups & binding.groups:
                continue
            if any(rule.allows(request) for rule in binding.rules):
                return True
        return False

    def authorize(self, user: EmulatedUser, request: RequestAttributes) -> None:
        """Raise the real server's 403 unless RBAC grants ``request`` to ``user``."""
        if not self.allowed(user, request):
            raise forbidden(user, request)


def forbidden(user: EmulatedUser, request: RequestAttributes) -> ApiStatusError:
    """The 403 body of the apiserver's authorization filter, word for word."""
    resource = request.resource
    if request.subresource:
        resource = f"{resource}/{request.subresource}"
    if request.namespace:
        scope = f'in the namespace "{request.namespace}"'
    else:
        scope = "at the cluster scope"
    reason = (f'User "{user.name}" cannot {request.verb} resource "{resource}" in API group '
              f'"{request.group}" {scope}')
    qualified = f"{request.resource}.{request.group}" if request.group else request.resource
    subject = f'{qualified} "{request.name}"' if request.name else qualified
    details: dict[str, Any] = {}
    if request.name:
        details["name"] = request.name
    if request.group:
        details["group"] = request.group
    details["kind"] = request.resource
    return ApiStatusError(403, f"{subject} is forbidden: {reason}", reason="Forbidden",
                          details=details)


_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


def request_attributes(method: str, path: str, *, watch: bool) -> RequestAttributes | None:
    """What a request asks, parsed from its URL as the apiserver's RequestInfo does; ``None``
    for a non-resource request (discovery, ``/version``), which every user may make."""
    parts = [part for part in path.split("/") if part]
    if len(parts) >= 3 and parts[0] == "api":
        group, rest = "", parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method)
    if verb is None:
        if method == "DELETE":
            verb = "delete" if name else "deletecollection"
        else:
            verb = "watch" if watch else ("get" if name else "list")
    return RequestAttributes(verb, group, resource, subresource, name, namespace)


__all__ = ["Authorizer", "EmulatedUser", "RequestAttributes", "forbidden", "rbac_documents",
           "request_attributes"]
