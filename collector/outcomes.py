"""The OTLP outcomes other than success, and their codes on each transport — one table.

The OTLP specification fixes these: undecodable data is not retryable (400 /
INVALID_ARGUMENT); an overloaded or stopping server asks the client to retry later (503 with
``Retry-After`` / UNAVAILABLE with ``RetryInfo``); a request over the size limit is
413 / RESOURCE_EXHAUSTED. A content coding the server cannot decode is 415 (RFC 9110), not
retryable either.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc


class ExportError(Exception):
    """An Export that is answered with an error status."""


class InvalidPayload(ExportError):
    """The body is not a decodable OTLP request; nothing of it was stored."""


class TooLarge(ExportError):
    """The body exceeds the configured maximum size."""


class UnsupportedEncoding(ExportError):
    """The body uses a ``Content-Encoding`` the receiver does not decode."""


class Overloaded(ExportError):
    """The write queue is full; the client should retry later."""


class ShuttingDown(ExportError):
    """The server is stopping; the client should retry later (elsewhere or after restart)."""


class Unauthenticated(ExportError):
    """The request carries no valid bearer token."""


class StoreFailed(ExportError):
    """Storing failed for a reason that is not the request's fault."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one error is answered on each transport."""

    grpc_code: grpc.StatusCode
    http_status: int
    retry_after_s: int | None


#: The single table both receivers answer from.
OUTCOMES: dict[type[ExportError], Outcome] = {
    InvalidPayload: Outcome(grpc.StatusCode.INVALID_ARGUMENT, 400, None),
    TooLarge: Outcome(grpc.StatusCode.RESOURCE_EXHAUSTED, 413, None),
    UnsupportedEncoding: Outcome(grpc.StatusCode.INVALID_ARGUMENT, 415, None),
    Overloaded: Outcome(grpc.StatusCode.UNAVAILABLE, 503, 1),
    ShuttingDown: Outcome(grpc.StatusCode.UNAVAILABLE, 503, 5),
    Unauthenticated: Outcome(grpc.StatusCode.UNAUTHENTICATED, 401, None),
    StoreFailed: Outcome(grpc.StatusCode.INTERNAL, 500, None),
}


def outcome_of(exc: ExportError) -> Outcome:
    """The outcome for an error (by its class)."""
    return OUTCOMES[type(exc)]
