"""OTLP/HTTP receiver: ``POST /v1/traces``, ``/v1/logs``, ``/v1/metrics`` on one port.

Binary protobuf and OTLP/JSON share the port, chosen by ``Content-Type``; the answer uses
the request's encoding, errors included (a ``google.rpc.Status`` body). ``Content-Encoding:
gzip`` (and ``deflate``) bodies are inflated with a cap on the inflated size, so a small bomb
cannot take the process's memory. Run the app with :func:`receiver_runner`: it turns off
aiohttp's own inflating, which would answer an encoding it cannot decode (``br``, ``zstd``)
itself in plain text; the receiver answers those with a 415 ``Status`` naming the encoding.
"""

from __future__ import annotations

import logging
import zlib
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
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
    UnsupportedEncoding,
    outcome_of,
)

log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_DEFAULT_MAX_BYTES = 4 * 1024 * 1024
_GRPC_CODE_FOR_HTTP = {400: 3, 404: 5, 405: 12, 413: 8, 415: 3, 500: 13, 503: 14}
#: Content codings the receiver inflates itself (``x-gzip`` is gzip, RFC 9110 section 8.4.1.3).
_CODINGS = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}
#: Sent with a 415 for an unsupported coding, as RFC 9110 section 15.5.16 asks.
ACCEPT_ENCODING = "gzip, deflate, identity"
#: Set on an app served by :func:`receiver_runner` (aiohttp leaves its bodies as sent).
_RAW_BODIES = web.AppKey("raw_bodies", bool)


def _encode(message: Message, content_type: str) -> bytes:
    return otlp_json.dump(message) if content_type == JSON else message.SerializeToString()


def status_response(
    http_status: int,
    message: str,
    content_type: str,
    *,
    retry_after_s: int | None = None,
    accept_encoding: bool = False,
) -> web.Response:
    """An error answer: ``google.rpc.Status`` in the request's encoding."""
    status = status_pb2.Status(code=_GRPC_CODE_FOR_HTTP.get(http_status, 2), message=message)
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else {}
    if accept_encoding:
        headers["Accept-Encoding"] = ACCEPT_ENCODING
    return web.Response(
        status=http_status,
        body=_encode(status, content_type),
        content_type=content_type,
        headers=headers,
    )


def _content_type(request: web.Request) -> str:
    return JSON if request.content_type == JSON else PROTOBUF


def content_coding(header: str | None) -> str | None:
    """The one coding to undo for a ``Content-Encoding`` header (``None``: identity).

    Raises:
        UnsupportedEncoding: A coding other than gzip/deflate/identity, or several stacked.
    """
    names = [c.strip().lower() for c in (header or "").split(",")]
    names = [c for c in names if c and c != "identity"]
    if not names:
        return None
    if len(names) > 1 or names[0] not in _CODINGS:
        raise UnsupportedEncoding(
            f"unsupported Content-Encoding {header!r}; use one of {ACCEPT_ENCODING}"
        )
    return _CODINGS[names[0]]


class _Inflater:
    """Incremental gzip/deflate decoding that never produces more than asked for.

    ``deflate`` is meant to be the zlib format (RFC 9110), but some clients send a raw
    deflate stream: the first byte tells them apart, as aiohttp and browsers do.
    Concatenated gzip members are decoded one after the other.
    """

    def __init__(self, coding: str) -> None:
        self._coding = coding
        self._decoder: Any = None

    def _new_decoder(self, first_byte: int) -> Any:
        if self._coding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        wbits = zlib.MAX_WBITS if first_byte & 0x0F == 8 else -zlib.MAX_WBITS
        return zlib.decompressobj(wbits)

    def feed(self, data: bytes, limit: int) -> bytes:
        """Inflate ``data``; stop (returning ``limit + 1`` bytes) once past ``limit``."""
        out = bytearray()
        while data and len(out) <= limit:
            if self._decoder is None or (self._decoder.eof and self._coding == "gzip"):
                self._decoder = self._new_decoder(data[0])
            elif self._decoder.eof:
                raise InvalidPayload(f"data after the end of the {self._coding} stream")
            out += self._decoder.decompress(data, limit + 1 - len(out))
            data = self._decoder.unconsumed_tail or self._decoder.unused_data
        return bytes(out)

    def finish(self) -> None:
        """Check the stream ended where the body did."""
        if self._decoder is not None and not self._decoder.eof:
            raise InvalidPayload(f"truncated {self._coding} stream")


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """Read the body, inflating gzip/deflate, refusing more than ``max_bytes`` of either.

    The cap applies to the inflated size, so a small bomb stops at ``max_bytes``. Under
    :func:`receiver_runner` the receiver inflates; otherwise aiohttp already has (gzip and
    deflate) and only the codings it leaves alone are checked here.

    Raises:
        TooLarge: Over ``max_bytes``.
        UnsupportedEncoding: A ``Content-Encoding`` other than gzip, deflate, identity.
        InvalidPayload: A corrupt compressed stream or a cut connection.
    """
    header = request.headers.get("Content-Encoding")
    raw = request.app.get(_RAW_BODIES, False)
    if raw or (header or "").strip().lower() not in ("gzip", "deflate", "br", "zstd"):
        coding = content_coding(header)
    else:
        coding = None  # aiohttp inflated it
    encoded = (header or "identity").strip().lower() != "identity"
    if not encoded and request.content_length is not None and request.content_length > max_bytes:
        raise TooLarge(f"request body of {request.content_length} bytes exceeds {max_bytes}")
    inflater = _Inflater(coding) if coding else None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_chunked(64 * 1024):
            if inflater is not None:
                chunk = inflater.feed(chunk, max_bytes - size)
            size += len(chunk)
            if size > max_bytes:
                what = "inflated request body" if encoded else "request body"
                raise TooLarge(f"{what} exceeds {max_bytes} bytes")
            chunks.append(chunk)
        if inflater is not None:
            inflater.finish()
    except (web.HTTPException, TooLarge, InvalidPayload):
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt gzip/deflate stream, a cut connection
        raise InvalidPayload(f"unreadable body: {exc}") from exc
    return b"".join(chunks)


def receiver_runner(app: web.Application, **kwargs: Any) -> web.AppRunner:
    """An ``AppRunner`` for the receiver app that leaves request bodies as they were sent.

    aiohttp would inflate bodies itself and answer a coding it cannot decode in plain
    text before the app sees the request; here the receiver decodes, so every answer is
    an OTLP one.
    """
    app[_RAW_BODIES] = True
    return web.AppRunner(app, auto_decompress=False, **kwargs)


def create_receiver_app(
    ingestor: Ingestor, *, max_bytes: int = _DEFAULT_MAX_BYTES, auth: TokenAuth | None = None
) -> web.Application:
    """The OTLP/HTTP aiohttp application (``auth``: bearer tokens required if given)."""

    def handler(kind: str) -> Handler:
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
                    outcome.http_status,
                    str(exc),
                    content_type,
                    retry_after_s=outcome.retry_after_s,
                    accept_encoding=isinstance(exc, UnsupportedEncoding),
                )
            return web.Response(body=_encode(response, content_type), content_type=content_type)

        return export

    @web.middleware
    async def not_found(request: web.Request, handler: Handler) -> web.StreamResponse:
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
