"""The emulator's RBAC: what a request asks, read from its URL, and which rules grant it."""

from __future__ import annotations

import pytest

from shiftd.sim.rbac import Authorizer, EmulatedUser, RequestAttributes, request_attributes


@pytest.mark.parametrize(("method", "path", "watch", "expected"), [
    ("GET", "/api/v1/namespaces/ns/pods", False,
     RequestAttributes("list", "", "pods", "", "", "ns")),
    ("GET", "/api/v1/namespaces/ns/pods", True,
     RequestAttributes("watch", "", "pods", "", "", "ns")),
    ("GET", "/api/v1/namespaces/ns/pods/p", False,
     RequestAttributes("get", "", "pods", "", "p", "ns")),
    ("PATCH", "/apis/argoproj.io/v1alpha1/namespaces/ns/rollouts/r/status", False,
     RequestAttributes("patch", "argoproj.io", "rollouts", "status", "r", "ns")),
    ("PUT", "/api/v1/namespaces/ns/finalize", False,
     RequestAttributes("update", "", "namespaces", "finalize", "ns", "ns")),
    ("DELETE", "/apis/apps/v1/namespaces/ns/replicasets", False,
     RequestAttributes("deletecollection", "apps", "replicasets", "", "", "ns")),
    ("DELETE", "/api/v1/namespaces/ns", False,
     RequestAttributes("delete", "", "namespaces", "", "ns", "ns")),
    ("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", False,
     RequestAttributes("create", "apiextensions.k8s.io", "customresourcedefinitions")),
    ("GET", "/apis/argoproj.io/v1alpha1", False, None),
    ("GET", "/version", False, None),
])
def test_a_request_url_reads_as_the_apiservers_request_info(
    method: str, path: str, watch: bool, expected: RequestAttributes | None
) -> None:
    assert request_attributes(method, path, watch=watch) == expected


ROLES = [
    {"kind": "ClusterRole", "metadata": {"name": "all-status"},
     "rules": [{"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["*"]}]},
    {"kind": "ClusterRoleBinding", "metadata": {"name": "all-status"},
     "roleRef": {"kind": "ClusterRole", "name": "all-status"},
     "subjects": [{"kind": "Group", "name": "writers"}]},
    {"kind": "ClusterRole", "metadata": {"name": "no-role-bound-twice"}, "rules": []},
    {"kind": "RoleBinding", "metadata": {"name": "missing", "namespace": "ns"},
     "roleRef": {"kind": "Role", "name": "does-not-exist"},
     "subjects": [{"kind": "User", "name": "alice"}]},
]


@pytest.mark.parametrize(("user", "request_", "allowed"), [
    (EmulatedUser("bob", ("writers",)),
     RequestAttributes("update", "apps", "replicasets", "status", "r", "ns"), True),
    (EmulatedUser("bob", ("writers",)),
     RequestAttributes("update", "apps", "replicasets", "", "r", "ns"), False),
    (EmulatedUser("alice"), RequestAttributes("get", "", "pods", "", "p", "ns"), False),
])
def test_rules_grant_by_group_and_subresource_and_a_dangling_binding_grants_nothing(
    user: EmulatedUser, request_: RequestAttributes, allowed: bool
) -> None:
    authorizer = Authorizer.build(admin_token="admin", users={}, documents=ROLES)
    assert authorizer.allowed(user, request_) is allowed
