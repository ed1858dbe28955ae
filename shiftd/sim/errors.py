"""The errors the emulator answers with, as real ``Status`` objects.

Every handler failure is an ``ApiStatusError``; the server turns it into the HTTP response a
kube-apiserver would send (``kind: Status``, ``status: Failure``, a reason and a code).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_REASONS = {
    400: "BadRequest",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
}


def status_body(
    code: int, message: str, *, reason: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``metav1.Status`` describing a failure."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _REASONS.get(code, "Unknown"),
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


class ApiStatusError(Exception):
    """A request the emulator refuses; carries the ``Status`` body to send."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.body = status_body(code, message, reason=reason, details=details)


def _details(name: str | None, group: str, kind: str) -> dict[str, Any]:
    """StatusDetails as the server serialises them: empty fields left out."""
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = kind
    return details


def _qualified(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(group: str, plural: str, name: str) -> ApiStatusError:
    return ApiStatusError(
        404,
        f'{_qualified(group, plural)} "{name}" not found',
        details=_details(name, group, plural),
    )


def already_exists(group: str, plural: str, name: str) -> ApiStatusError:
    return ApiStatusError(
        409,
        f'{_qualified(group, plural)} "{name}" already exists',
        reason="AlreadyExists",
        details=_details(name, group, plural),
    )


def conflict(group: str, plural: str, name: str) -> ApiStatusError:
    return ApiStatusError(
        409,
        f'Operation cannot be fulfilled on {_qualified(group, plural)} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again",
        reason="Conflict",
        details=_details(name, group, plural),
    )


def precondition_failed(kind: str, group: str, name: str, *, field: str, wanted: str,
                        stored: str) -> ApiStatusError:
    """The 409 of a delete whose precondition (``UID`` or ``ResourceVersion``) fails."""
    consequence = "replaced" if field == "UID" else "modified"
    return ApiStatusError(
        409,
        f'Operation cannot be fulfilled on {_qualified(group, kind)} "{name}": the {field} in '
        f"the precondition ({wanted}) does not match the {field} in record ({stored}). The "
        f"object might have been {consequence}",
        reason="Conflict",
        details=_details(name, group, kind),
    )


def deleted(name: str, group: str, plural: str, uid: str) -> dict[str, Any]:
    """The ``Status`` a real server answers a delete of a built-in object with."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {**_details(name, group, plural), "uid": uid}}


def invalid(kind: str, name: str | None, message: str, *, group: str = "") -> ApiStatusError:
    return ApiStatusError(
        422,
        f'{kind} "{name or ""}" is invalid: {message}',
        reason="Invalid",
        details={"name": name or "", "group": group, "kind": kind,
                 "causes": [{"reason": "FieldValueInvalid", "message": message}]},
    )


@dataclass(frozen=True, slots=True)
class Cause:
    """One invalid field, as a ``Status`` cause: ``field: message``."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"


def invalid_fields(kind: str, group: str, name: str, causes: Sequence[Cause]) -> ApiStatusError:
    """The 422 a real server sends for invalid fields: each cause in the message (several in
    brackets), ``Kind.group`` qualified, and ``group`` left out of the details of core kinds."""
    parts = [f"{cause.field}: {cause.message}" for cause in causes]
    summary = parts[0] if len(parts) == 1 else f"[{', '.join(parts)}]"
    qualified = f"{kind}.{group}" if group else kind
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [{"reason": c.reason, "message": c.message, "field": c.field}
                         for c in causes]
    return ApiStatusError(422, f'{qualified} "{name}" is invalid: {summary}', reason="Invalid",
                          details=details)


def bad_request(message: str) -> ApiStatusError:
    return ApiStatusError(400, message, reason="BadRequest")


def expired(requested: str, oldest: int) -> dict[str, Any]:
    """The watch ERROR object for a resourceVersion older than the retained history."""
    return status_body(
        410, f"too old resource version: {requested} ({oldest})", reason="Expired"
    )
