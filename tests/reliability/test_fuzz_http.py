"""The OTLP/HTTP transport under bad input: any Content-Type and Content-Encoding, bombs, paths.

Compressed requests are inflated by the receiver itself (gzip, x-gzip, deflate; a cap on the
inflated size stops a bomb); any other coding is a 415 ``Status`` naming it, with
``Accept-Encoding``; unknown paths and methods are 404/405 ``Status`` answers. See
fuzz_support.py for the contract every answer is checked against.
"""

from __future__ import annotations

import functools
import gzip
import http.client
import json
import struct
import time
import zlib

import grpc
import pytest
from fuzz_support import (  # noqa: F401 - fixtures are used by name
    FUZZ,
    JSON,
    KINDS,
    PB,
    TRIED,
    LiveReceivers,
    check_http,
    live_fixture,
    sentinel_fixture,
    still_serving_fixture,
    valid_requests,
)
from google.protobuf import json_format
from google.rpc import status_pb2
from hypothesis import given
from hypothesis import strategies as st
from otlp_build import new_span_id, new_trace_id, span, traces_request


@FUZZ
@given(kind=st.sampled_from(KINDS), body=st.binary(max_size=512),
       ctype=st.one_of(st.sampled_from([PB, JSON, "application/json; charset=utf-8", "text/plain",
                                        "application/octet-stream", "", "application/x-protobuf; x=1"]),
                       st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)))  # fmt: skip
def test_any_content_type(live: LiveReceivers, kind: str, body: bytes, ctype: str) -> None:
    TRIED["content types"] = TRIED.get("content types", 0) + 1
    status, answer_type, data = live.post(kind, body, {"Content-Type": ctype} if ctype else {})
    check_http(kind, status, answer_type, data)


BOMB_MIB = 256


@functools.cache
def _deflated_zeros() -> tuple[bytes, int, int]:
    """A raw deflate stream of BOMB_MIB MiB of zeros, with its CRC-32 and Adler-32."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    chunk = b"\x00" * (1 << 20)
    crc, adler, parts = 0, 1, []
    for _ in range(BOMB_MIB):
        parts.append(packer.compress(chunk))
        crc, adler = zlib.crc32(chunk, crc), zlib.adler32(chunk, adler)
    return b"".join(parts) + packer.flush(), crc, adler


def _bomb(encoding: str) -> bytes:
    raw, crc, adler = _deflated_zeros()
    if encoding == "gzip":
        size = (BOMB_MIB << 20) & 0xFFFFFFFF
        return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + raw + struct.pack("<II", crc, size)
    return b"\x78\x9c" + raw + struct.pack(">I", adler)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compression_bombs_stop_at_the_limit(live: LiveReceivers, encoding: str) -> None:
    bomb = _bomb(encoding)  # 256 MiB inflated, 256 KiB on the wire
    assert len(bomb) < (BOMB_MIB << 20) // 500
    TRIED["compression bombs"] = TRIED.get("compression bombs", 0) + 1
    started = time.monotonic()
    status, ctype, data = live.post(
        "logs", bomb, {"Content-Type": PB, "Content-Encoding": encoding}
    )
    assert status == 413 and check_http("logs", status, ctype, data) == -1
    assert time.monotonic() - started < 10


def _raw_deflate(body: bytes, level: int) -> bytes:
    packer = zlib.compressobj(level, zlib.DEFLATED, -15)
    return packer.compress(body) + packer.flush()


#: How each accepted coding is produced (raw deflate: what some clients send as "deflate").
ENCODERS = {
    "gzip": gzip.compress,
    "GZIP": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate (raw)": _raw_deflate,
    "identity": lambda body, _level: body,
    "gzip, identity": gzip.compress,
    "gzip (2 members)": lambda body, level: (
        gzip.compress(body[:7], level) + gzip.compress(body[7:], level)
    ),
}


@FUZZ
@given(request=valid_requests(), encoding=st.sampled_from(sorted(ENCODERS)),
       level=st.integers(0, 9))  # fmt: skip
def test_compressed_valid_requests_are_stored(
    live: LiveReceivers, request: tuple[str, bytes], encoding: str, level: int
) -> None:
    kind, body = request
    TRIED["compressed requests"] = TRIED.get("compressed requests", 0) + 1
    wire = ENCODERS[encoding](body, level)
    header = encoding.split(" (")[0]
    status, ctype, data = live.post(kind, wire, {"Content-Type": PB, "Content-Encoding": header})
    assert status == 200, data
    check_http(kind, status, ctype, data)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "x-gzip"])
@pytest.mark.parametrize("damage", ["not compressed", "truncated", "trailing junk"])
def test_corrupt_compressed_body_is_a_400(live: LiveReceivers, encoding: str, damage: str) -> None:
    """Found by this fuzzing: aiohttp's RequestPayloadError escaped read_body (a 500)."""
    body = traces_request([span(new_trace_id(), new_span_id(), "x", {})]).SerializeToString()
    packed = zlib.compress(body) if encoding == "deflate" else gzip.compress(body)
    wire = {
        "not compressed": b"this is not compressed data at all",
        "truncated": packed[: len(packed) // 2],
        "trailing junk": packed + b"junk",
    }[damage]
    status, ctype, data = live.post(
        "traces", wire, {"Content-Type": PB, "Content-Encoding": encoding}
    )
    assert status == 400, data
    check_http("traces", status, ctype, data)


def _assert_refused_coding(live: LiveReceivers, encoding: str, ctype: str) -> None:
    """A 415 ``Status`` that names the coding, with ``Accept-Encoding``; nothing stored."""
    s = span(new_trace_id(), new_span_id(), "x", {})
    body = traces_request([s]).SerializeToString()
    if ctype == JSON:
        body = json.dumps(
            {"resourceSpans": [{"scopeSpans": [{"spans": [{
                "traceId": s.trace_id.hex(), "spanId": s.span_id.hex(), "name": "x",
                "startTimeUnixNano": "1", "endTimeUnixNano": "2"}]}]}]}
        ).encode()  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", live.http_port, timeout=30)
    try:
        conn.request(
            "POST",
            "/v1/traces",
            body=body,
            headers={"Content-Type": ctype, "Content-Encoding": encoding},
        )
        resp = conn.getresponse()
        status, answer_type, data = resp.status, resp.getheader("Content-Type") or "", resp.read()
        accept = resp.getheader("Accept-Encoding")
    finally:
        conn.close()
    assert status == 415, (status, data)
    check_http("traces", status, answer_type, data)
    assert answer_type.startswith(ctype), "answered in the request's encoding"
    error = status_pb2.Status()
    if ctype == JSON:
        json_format.Parse(data, error)
    else:
        error.ParseFromString(data)
    assert repr(encoding) in error.message, error.message
    assert accept == "gzip, deflate, identity"
    assert live.rows("SELECT count(*) FROM spans WHERE span_id = ?", [s.span_id.hex()]) == [(0,)]


@pytest.mark.parametrize("ctype", [PB, JSON])
@pytest.mark.parametrize(
    "encoding", ["br", "zstd", "compress", "snappy", "gzip, br", "gzip, gzip", "x", "*"]
)
def test_unsupported_encoding_is_answered_in_otlp_shape(
    live: LiveReceivers, encoding: str, ctype: str
) -> None:
    """Found by this fuzzing: ``br``/``zstd`` were answered by aiohttp itself in plain text
    ("Please install Brotli") and any other coding was read as if there were none."""
    TRIED["unsupported encodings"] = TRIED.get("unsupported encodings", 0) + 1
    _assert_refused_coding(live, encoding, ctype)


@FUZZ
@given(
    encoding=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)
)
def test_any_content_encoding(live: LiveReceivers, encoding: str) -> None:
    """Garbage in ``Content-Encoding``: a documented answer, 415 unless it is a known coding."""
    TRIED["content encodings"] = TRIED.get("content encodings", 0) + 1
    body = traces_request([span(new_trace_id(), new_span_id(), "x", {})]).SerializeToString()
    status, ctype, data = live.post(
        "traces", body, {"Content-Type": PB, "Content-Encoding": encoding}
    )
    check_http("traces", status, ctype, data)
    known = {c.strip().lower() for c in encoding.split(",")} - {""}
    if not known <= {"identity", "gzip", "x-gzip", "deflate"}:
        assert status == 415, (encoding, status)


def test_unknown_paths_and_methods(live: LiveReceivers) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", live.http_port, timeout=10)
    try:
        for method, path, expected in [
            ("GET", "/v1/traces", 405),
            ("POST", "/v1/nope", 404),
            ("PUT", "/v1/logs", 405),
        ]:
            conn.request(method, path, body=b"", headers={"Content-Type": PB})
            resp = conn.getresponse()
            data = resp.read()
            assert resp.status == expected
            status_pb2.Status.FromString(data)
    finally:
        conn.close()
    try:
        live.channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Nope")(
            b"", timeout=10
        )
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]
