"""Error responses and watch Status objects map onto the exception tree."""

from __future__ import annotations

import orjson
import pytest

from shiftd.kube.errors import (
    ApiError,
    Conflict,
    ConnectionFailed,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    RequestTimeout,
    ServerError,
    TooManyRequests,
    TransportError,
    UnsupportedMediaType,
    error_from_response,
    error_from_status,
)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, ApiError),
        (403, ApiError),
        (404, NotFound),
        (409, Conflict),
        (410, Gone),
        (415, UnsupportedMediaType),
        (422, Invalid),
        (429, TooManyRequests),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_a_status_body_maps_to_the_exception_for_its_code(
    status: int, expected: type[ApiError]
) -> None:
    body = orjson.dumps({"kind": "Status", "code": status, "reason": "Why", "message": "what"})
    error = error_from_response(status, body)
    assert type(error) is expected
    assert (error.status, error.reason, error.message) == (status, "Why", "what")
    assert str(error) == f"{status} Why: what"


def test_a_body_that_is_not_a_status_becomes_the_message() -> None:
    error = error_from_response(404, b"404 page not found\n", http_reason="Not Found")
    assert isinstance(error, NotFound)
    assert (error.reason, error.message) == ("Not Found", "404 page not found")


def test_an_empty_error_body_keeps_the_http_status_and_reason() -> None:
    error = error_from_response(409, b"", http_reason="Conflict")
    assert (type(error), error.status, error.reason, error.message) == (
        Conflict,
        409,
        "Conflict",
        "",
    )


def test_the_status_code_of_a_watch_error_wins_over_the_http_status() -> None:
    error = error_from_status({"kind": "Status", "code": 410, "reason": "Expired"}, http_status=200)
    assert isinstance(error, Gone)


def test_a_status_without_a_code_falls_back_to_the_http_status() -> None:
    assert isinstance(error_from_status({"message": "gone"}, http_status=410), Gone)


def test_every_error_is_a_kube_error() -> None:
    for error_type in (TransportError, ConnectionFailed, RequestTimeout, ApiError, Gone):
        assert issubclass(error_type, KubeError)
    assert issubclass(ConnectionFailed, TransportError)
    assert not issubclass(TransportError, ApiError)
