"""OTLP/HTTP receiver: ``POST /v1/traces``, ``/v1/logs``, ``/v1/metrics`` on one port.

Binary protobuf and OTLP/JSON share the port, chosen by ``Content-Type``; the answer uses
the request's encoding, errors included (a ``google.rpc.Status`` body). ``Content-Encoding:
gzip`` bodies are inflated with a cap on the inflated size, so a small bomb cannot take the
process's memory.
"""

from __future__ import annotations

import logging

from aiohttp import web
from google.protobuf.message import Message
from google.rpc import status_pb2

from jobtrail.auth import TokenAuth
from jobtrail.collector import otlp_json
from jobtrail.collector.ingest import SIGNALS, Ingestor
from jobtrail.collector.outcomes import (
    ExportError,
    InvalidPayload,
    TooLarge,
    Unauthenticated,
    outcome_of,
)

log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_DEFAULT_MAX_BYTES = 4 * 1024 * 1024
_GRPC_CODE_FOR_HTTP = {400: 3, 404: 5, 405: 12, 413: 8, 415: 3, 500: 13, 503: 14}


def _encode(message: Message, content_type: str) -> bytes:
    return otlp_json.dump(message) if content_type == JSON else message.SerializeToString()


def status_response(
    http_status: int, message: str, content_type: str, *, retry_after_s: int | None = None
) -> web.Response:
    """An error answer: ``google.rpc.Status`` in the request's encoding."""
    status = status_pb2.Status(code=_GRPC_CODE_FOR_HTTP.get(http_status, 2), message=message)
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return web.Response(
        status=http_status,
        body=_encode(status, content_type),
        content_type=content_type,
        headers=headers,
    )


def _content_type(request: web.Request) -> str:
    return JSON if request.content_type == JSON else PROTOBUF


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """Read the body, refusing more than ``max_bytes``.

    aiohttp inflates ``Content-Encoding: gzip``/``deflate`` bodies as they stream in, so the
    cap applies to the inflated size and a small bomb stops at ``max_bytes``.
    """
    encoded = request.headers.get("Content-Encoding", "identity").lower() != "identity"
    if not encoded and request.content_length is not None and request.content_length > max_bytes:
        raise TooLarge(f"request body of {request.content_length} bytes exceeds {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > max_bytes:
                what = "inflated request body" if encoded else "request body"
                raise TooLarge(f"{what} exceeds {max_bytes} bytes")
            chunks.append(chunk)
    except (web.HTTPException, TooLarge):
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt gzip/deflate stream, a cut connection
        raise InvalidPayload(f"unreadable body: {exc}") from exc
    return b"".join(chunks)


def create_receiver_app(
    ingestor: Ingestor, *, max_bytes: int = _DEFAULT_MAX_BYTES, auth: TokenAuth | None = None
) -> web.Application:
    """The OTLP/HTTP aiohttp application (``auth``: bearer tokens required if given)."""

    def handler(kind: str) -> web.Handler:
        async def export(request: web.Request) -> web.StreamResponse:
            content_type = _content_type(request)
            if request.content_type not in (JSON, PROTOBUF):
                return status_response(
                    415,
                    f"unsupported Content-Type {request.content_type!r}; use {PROTOBUF} or {JSON}",
                    content_type,
                )
            try:
                if auth is not None and not auth.allows(request.headers.get("Authorization")):
                    raise Unauthenticated("missing or invalid bearer token")
                body = await read_body(request, max_bytes)
                response = await ingestor.export(kind, "http", body, json=content_type == JSON)
            except ExportError as exc:
                outcome = outcome_of(exc)
                return status_response(
                    outcome.http_status, str(exc), content_type, retry_after_s=outcome.retry_after_s
                )
            return web.Response(body=_encode(response, content_type), content_type=content_type)

        return export

    @web.middleware
    async def not_found(request: web.Request, handler: web.Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPMethodNotAllowed:
            return status_response(
                405, f"{request.method} not allowed; use POST", _content_type(request)
            )
        except web.HTTPNotFound:
            return status_response(
                404, f"no OTLP endpoint at {request.path}", _content_type(request)
            )

    app = web.Application(middlewares=[not_found], client_max_size=2**40)
    for kind in SIGNALS:
        app.router.add_post(f"/v1/{kind}", handler(kind))
    return app
