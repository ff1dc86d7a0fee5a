"""Errors as RFC 9457 problem details (``application/problem+json``): eventkeep's error class
and message, never a stack trace, never a credential."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from starlette.responses import Response

from eventkeep import errors
from eventkeep.urls import redact

__all__ = ["PROBLEM_TYPE", "HTTPProblem", "problem_for", "problem_response"]

PROBLEM_TYPE = "application/problem+json"

_STATUS: tuple[tuple[type[errors.EventkeepError], int], ...] = (
    (errors.EventTooLargeError, 413),
    (errors.ValidationError, 400),
    (errors.SerializationError, 400),
    (errors.ConcurrencyError, 409),  # AppendConditionError too
    (errors.CheckpointConflictError, 409),
    (errors.DuplicateEventIdError, 409),
    (errors.NotFoundError, 404),
    (errors.ProjectionFailedError, 409),
    (errors.IntegrityError, 409),
    (errors.AnchorError, 400),
    (errors.ConfigurationError, 400),
    (errors.BackendUnavailableError, 503),
    (errors.SchemaVersionError, 503),
)
"""Most specific first: the first class the error is an instance of gives the status."""


class HTTPProblem(Exception):
    """Raised by a handler to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        error: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.error = error
        self.headers = headers or {}
        self.extra = extra


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def problem_response(
    status: int,
    detail: str,
    *,
    error: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A problem+json response; ``error`` names eventkeep's error class, when there is one."""
    body: dict[str, Any] = {
        "type": f"https://eventkeep.dev/problems/{_kebab(error) if error else status}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": redact(" ".join(detail.split())) or _TITLES.get(status, "Error"),
    }
    if error:
        body["error"] = error
    body.update(extra)
    return Response(
        msgspec.json.encode(body), status_code=status, media_type=PROBLEM_TYPE, headers=headers
    )


def problem_for(exc: BaseException) -> Response:
    """The problem response for an exception raised while handling a request."""
    if isinstance(exc, HTTPProblem):
        return problem_response(
            exc.status, exc.detail, error=exc.error, headers=exc.headers, **exc.extra
        )
    if isinstance(exc, errors.EventkeepError):
        status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)
        extra: dict[str, Any] = {"retryable": bool(exc.retryable)}
        if isinstance(exc, errors.AppendConditionError):
            extra["position"] = exc.position
        elif isinstance(exc, errors.ConcurrencyError):
            expected = exc.expected
            extra["stream_id"] = exc.stream_id
            extra["expected_version"] = getattr(expected, "value", expected)
            extra["actual_version"] = exc.actual
        if isinstance(exc, errors.BackendUnavailableError):
            extra["outcome_unknown"] = exc.outcome_unknown
        return problem_response(status, str(exc), error=type(exc).__name__, **extra)
    return problem_response(500, "the server failed to handle the request; see its log")
