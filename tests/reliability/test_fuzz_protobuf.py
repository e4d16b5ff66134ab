"""Bad protobuf never crashes the receivers: the same bytes over OTLP/gRPC and OTLP/HTTP.

Random bytes, mutated valid requests, wrong-length ids, extreme timestamps, out-of-range enums,
invalid UTF-8, deep nesting, huge values and a million attributes in one record: every answer
is a documented one, bad records are counted in ``partial_success`` while the good ones are
stored, and the server keeps serving (see fuzz_support.py).
"""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from fuzz_support import (  # noqa: F401 - fixtures are used by name
    FUZZ,
    JSON,
    KINDS,
    MAX_BYTES,
    PB,
    TRIED,
    LiveReceivers,
    _id,
    _id_ok,
    _time_ok,
    check_grpc,
    check_http,
    live_fixture,
    log_specs,
    mutations,
    send_both,
    sentinel_fixture,
    span_specs,
    still_serving_fixture,
    timestamps,
    valid_requests,
)
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from otlp_build import length_delimited as _ld
from otlp_build import log, logs_request, new_span_id, new_trace_id, span, traces_request
from otlp_build import varint as _varint


@FUZZ
@given(kind=st.sampled_from(KINDS), body=st.binary(max_size=2048))
def test_random_bytes(live: LiveReceivers, kind: str, body: bytes) -> None:
    send_both(live, kind, body, "random bytes")


@FUZZ
@given(request=mutations())
def test_mutated_protobuf(live: LiveReceivers, request: tuple[str, bytes]) -> None:
    send_both(live, *request, "mutated protobuf")


@FUZZ
@given(kind=st.sampled_from(["traces", "logs"]), data=st.data())
def test_ids_and_timestamps_are_checked_record_by_record(
    live: LiveReceivers, kind: str, data: st.DataObject
) -> None:
    """Wrong-length or zero ids, absurd timestamps and unknown enum values (span kind, status
    code, severity) reject that record, never the request: the answer counts exactly the bad
    ones and exactly the good ones are stored."""
    if kind == "traces":
        specs = data.draw(st.lists(span_specs, min_size=1, max_size=6))
        spans = [
            Span(trace_id=_id(s["trace"]), span_id=_id(s["span"]), parent_span_id=_id(s["parent"]),
                 name=s["name"], kind=s["kind"], start_time_unix_nano=s["start"],
                 end_time_unix_nano=s["end"], attributes=s["attrs"],
                 status={"code": s["status"]})  # type: ignore[arg-type]
            for s in specs
        ]  # fmt: skip
        good = [
            _id_ok(s["trace"], 16, required=True) and _id_ok(s["span"], 8, required=True)
            and _id_ok(s["parent"], 8, required=False) and _time_ok(s["start"]) and _time_ok(s["end"])
            and 0 <= s["kind"] <= 5 and 0 <= s["status"] <= 2
            for s in specs
        ]  # fmt: skip
        body = traces_request(spans, "fuzz-ids").SerializeToString()
        keys = [s.span_id.hex() for s, ok in zip(spans, good, strict=True) if ok]
        sql = "SELECT count(*) FROM spans WHERE span_id IN (SELECT unnest(?::VARCHAR[]))"
    else:
        specs = data.draw(st.lists(log_specs, min_size=1, max_size=6))
        marker = os.urandom(8).hex()
        records = [
            LogRecord(trace_id=_id(r["trace"]), span_id=_id(r["span"]), time_unix_nano=r["time"],
                      observed_time_unix_nano=r["observed"], severity_number=r["severity"],
                      body=AnyValue(string_value=f"{marker} {i}"), attributes=r["attrs"],
                      event_name=r["event"])  # type: ignore[arg-type]
            for i, r in enumerate(specs)
        ]  # fmt: skip
        good = [
            _id_ok(r["trace"], 16, required=False) and _id_ok(r["span"], 8, required=False)
            and _time_ok(r["time"]) and _time_ok(r["observed"]) and 0 <= r["severity"] <= 24
            for r in specs
        ]  # fmt: skip
        body = logs_request(records, "fuzz-ids").SerializeToString()
        keys = [f"{marker} {i}" for i, ok in enumerate(good) if ok]
        sql = "SELECT count(*) FROM logs WHERE body IN (SELECT unnest(?::VARCHAR[]))"
    TRIED["ids and timestamps"] = TRIED.get("ids and timestamps", 0) + 1
    code, answer = live.export(kind, body)
    assert check_grpc(kind, code, answer) == good.count(False)
    assert live.rows(sql, [keys]) == [(len(keys),)]
    status, ctype, answer = live.post(kind, body, {"Content-Type": PB})  # a retry: stored once
    assert check_http(kind, status, ctype, answer) == good.count(False)
    assert live.rows(sql, [keys]) == [(len(keys),)]


@FUZZ
@given(request=valid_requests(), field=st.sampled_from(["name", "key", "value", "body"]),
       junk=st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]))  # fmt: skip
def test_invalid_utf8_in_strings(
    live: LiveReceivers, request: tuple[str, bytes], field: str, junk: bytes
) -> None:
    """Invalid UTF-8 in a string field (a name, an attribute key or value, a log body)."""
    kind = "traces" if field == "name" else request[0]
    marker = b"MARK" + os.urandom(4).hex().encode()
    if kind == "traces":
        s = span(new_trace_id(), new_span_id(), marker.decode() if field == "name" else "n",
                 {marker.decode() if field == "key" else "k": marker.decode()})  # fmt: skip
        body = traces_request([s]).SerializeToString()
    else:
        r = log(None, None, marker.decode(), {marker.decode() if field == "key" else "k": "v"})
        body = logs_request([r]).SerializeToString()
    body = body.replace(marker, junk + marker[len(junk) :], 1)
    send_both(live, kind, body, "invalid UTF-8")
    doc = (
        b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"'
        + junk
        + b'"}}]}]}]}'
    )
    status, ctype, data = live.post("logs", doc, {"Content-Type": JSON})
    assert status == 400 and check_http("logs", status, ctype, data) == -1


# -- size and depth ---------------------------------------------------------------------------


def _span_with_raw_attributes(raw_attributes: bytes) -> bytes:
    """An ExportTraceServiceRequest whose one span carries ``raw_attributes`` (field 9)."""
    base = span(new_trace_id(), new_span_id(), "raw", {}).SerializeToString() + raw_attributes
    return _ld(1, _ld(2, _ld(2, base)))  # request.resource_spans.scope_spans.spans


@pytest.mark.parametrize("depth", [10, 33, 99, 101, 1000, 100_000])
def test_deeply_nested_attribute_values(live: LiveReceivers, depth: int) -> None:
    body = _span_with_raw_attributes(_ld(9, _ld(1, b"deep") + _ld(2, _nested_any_value(depth))))
    send_both(live, "traces", body, "deep nesting")
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {}}]}]}]}
    node = doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["body"]  # type: ignore[index]
    for _ in range(min(depth, 5000)):
        inner: dict[str, Any] = {}
        node["arrayValue"] = {"values": [inner]}
        node = inner
    TRIED["deep nesting"] += 1
    body = json.dumps(doc).encode() if depth < 900 else _deep_json(depth)
    status, ctype, data = live.post("logs", body, {"Content-Type": JSON})
    check_http("logs", status, ctype, data)


def _nested_any_value(depth: int) -> bytes:
    """``AnyValue{kvlist_value{values: [KeyValue{key: "k", value: ...}]}}`` ``depth`` times.

    Every level is only a prefix (tags and lengths) before the next one, so the prefixes are
    computed from the inside out and joined once: linear, not quadratic, in ``depth``.
    """
    prefixes, size = [], 0
    for _ in range(depth):
        value = _varint(2 << 3 | 2) + _varint(size)  # KeyValue.value
        kv_size = len(_ld(1, b"k")) + len(value) + size
        kv = _varint(1 << 3 | 2) + _varint(kv_size)  # KeyValueList.values
        kvl_size = len(kv) + kv_size
        kvl = _varint(6 << 3 | 2) + _varint(kvl_size)  # AnyValue.kvlist_value
        prefixes.append(kvl + kv + _ld(1, b"k") + value)
        size = len(kvl) + kvl_size
    return b"".join(reversed(prefixes))


def _deep_json(depth: int) -> bytes:
    """JSON nested past what json.dumps can write (it recurses)."""
    opening = b'{"arrayValue":{"values":[' * depth
    closing = b"]}}" * depth
    return (
        b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":' + opening + closing + b"}]}]}]}"
    )


def test_huge_attribute_value_is_stored_whole(live: LiveReceivers) -> None:
    big = "x" * (MAX_BYTES - 64 * 1024)
    s = span(new_trace_id(), new_span_id(), "huge", {"big": big})
    TRIED["huge values"] = TRIED.get("huge values", 0) + 2
    by_grpc, by_http = send_both(
        live, "traces", traces_request([s]).SerializeToString(), "huge values"
    )
    assert by_grpc == by_http == 0
    rows = live.rows("SELECT length(attributes) FROM spans WHERE span_id = ?", [s.span_id.hex()])
    assert rows and rows[0][0] > len(big)
    too_big = span(new_trace_id(), new_span_id(), "too big", {"big": "y" * MAX_BYTES})
    body = traces_request([too_big]).SerializeToString()
    assert live.export("traces", body)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert live.post("traces", body, {"Content-Type": PB})[0] == 413


def _million_attributes() -> bytes:
    return b"".join(
        _ld(9, _ld(1, b"k%d" % i) + _ld(2, _varint(3 << 3) + _varint(i))) for i in range(1_000_000)
    )


def test_a_million_attributes_in_one_record(tmp_path: Path, live: LiveReceivers) -> None:
    """Over the default size limit: refused cheaply. Under a 64 MiB limit: stored, in bounded time."""
    body = _span_with_raw_attributes(_million_attributes())
    assert len(body) > MAX_BYTES
    TRIED["a million attributes"] = 3
    assert live.export("traces", body)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (
        live.post(
            "traces", gzip.compress(body, 1), {"Content-Type": PB, "Content-Encoding": "gzip"}
        )[0]
        == 413
    )
    roomy = LiveReceivers(tmp_path / "roomy.duckdb", max_bytes=64 * 1024 * 1024)
    try:
        started = time.monotonic()
        code, answer = roomy.export("traces", body)
        took = time.monotonic() - started
        assert check_grpc("traces", code, answer) == 0
        (count,) = roomy.rows("SELECT json_array_length(json_keys(attributes)) FROM spans")[0]
        assert count == 1_000_000
        code, _ = roomy.export(
            "traces",
            traces_request([span(new_trace_id(), new_span_id(), "after", {})]).SerializeToString(),
        )
        assert code == grpc.StatusCode.OK
    finally:
        roomy.close()
    print(f"\na million attributes ({len(body) >> 20} MiB): stored in {took:.1f} s")
    assert took < 60


def test_grpc_compressed_bomb_is_resource_exhausted(live: LiveReceivers) -> None:
    TRIED["compression bombs"] = TRIED.get("compression bombs", 0) + 1
    code, _ = live.export("traces", b"\x00" * (256 << 20), compression=grpc.Compression.Gzip)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("what", ["span kind", "status code", "severity"])
def test_out_of_range_enums_reject_the_record_not_the_request(
    live: LiveReceivers, what: str
) -> None:
    """Found by this fuzzing: an enum beyond int8 made the Arrow column raise (500 / UNKNOWN)
    and lost the whole request."""
    good = os.urandom(8).hex()
    if what == "severity":
        record = log(None, None, "loud")
        record.severity_number = 300  # type: ignore[assignment]
        kind, body = "logs", logs_request([record, log(None, None, good)]).SerializeToString()
        sql, key = "SELECT count(*) FROM logs WHERE body = ?", good
    else:
        s = span(new_trace_id(), new_span_id(), "odd", {})
        if what == "span kind":
            s.kind = 1000  # type: ignore[assignment]
        else:
            s.status.code = 200  # type: ignore[assignment]
        fine = span(new_trace_id(), new_span_id(), "fine", {})
        kind, body = "traces", traces_request([s, fine]).SerializeToString()
        sql, key = "SELECT count(*) FROM spans WHERE span_id = ?", fine.span_id.hex()
    code, data = live.export(kind, body)
    assert check_grpc(kind, code, data) == 1
    status, ctype, data = live.post(kind, body, {"Content-Type": PB})
    assert check_http(kind, status, ctype, data) == 1
    assert live.rows(sql, [key]) == [(1,)]


def test_decode_error_type_is_what_the_receivers_catch() -> None:
    """The protobuf runtime reports bad bytes as DecodeError (what Ingestor.parse catches)."""
    with pytest.raises(DecodeError):
        trace_pb.ExportTraceServiceRequest.FromString(b"\x0a\xff\xff\xff\xff\x0f")
