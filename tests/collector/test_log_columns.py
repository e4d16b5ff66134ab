"""The column-wise log decoder (C) agrees with the per-record reference decoder.

Every request below is decoded both ways with the same receive time; where the column-wise
path takes a request its table must equal the reference's value for value (attribute JSON
byte for byte, as orjson writes it), and its job/step updates too. Requests it declines
must be exactly the kinds it documents declining.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    InstrumentationScope,
    KeyValue,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from otlp_build import kv, length_delimited
from otlp_strategies import (
    ATTRS,
    KEYS,
    NOW_NS,
    PLAIN_VALUES,
    RECEIVED,
    TEXT,
    TIMES,
    VALUES,
    ids,
    mostly,
)

from jobtrail.collector.decode import decode_logs, decode_logs_per_record
from jobtrail.collector.log_columns import AVAILABLE, log_columns

needs_extension = pytest.mark.skipif(not AVAILABLE, reason="the _logwire extension is not built")

RECORDS = st.builds(
    LogRecord,
    time_unix_nano=TIMES,
    observed_time_unix_nano=TIMES,
    severity_number=mostly(st.integers(0, 24), st.sampled_from([25, -1])),
    severity_text=st.sampled_from(
        [
            "",
            "INFO",
            "SUCCESS",
            "success",
            "Warning",
            "warn",
            "crit",
            "CRITICAL",
            "error",
            "fatal",
            "debug",
            "nonsense",
            "İNFO",
            "SUCCEß",
        ]
    ),  # fmt: skip
    body=st.one_of(st.just(None), mostly(PLAIN_VALUES, VALUES)),
    attributes=ATTRS,
    trace_id=ids(16),
    span_id=ids(8),
    event_name=st.sampled_from(["", "job.started", "step.started", "job.progress", "other"]),
)
SCOPES = st.builds(
    ScopeLogs,
    scope=st.one_of(st.just(None), st.builds(InstrumentationScope, name=TEXT)),
    log_records=st.lists(RECORDS, min_size=1, max_size=4),
)
REQUESTS = st.lists(
    st.builds(
        ResourceLogs,
        resource=st.one_of(st.just(None), st.builds(Resource, attributes=ATTRS)),
        scope_logs=st.lists(SCOPES, min_size=1, max_size=2),
    ),
    min_size=1,
    max_size=2,
).map(lambda rls: ExportLogsServiceRequest(resource_logs=rls))


def _both(request: ExportLogsServiceRequest) -> tuple[Any, Any]:
    reference = decode_logs_per_record(request, RECEIVED)
    decoded = decode_logs(request, received=RECEIVED)
    return reference, decoded


def _rows(table: Any) -> list[dict[str, Any]]:
    return [] if table is None else table.to_pylist()


def _assert_same(reference: Any, decoded: Any) -> None:
    assert (decoded.rejected, decoded.errors) == (reference.rejected, reference.errors)
    assert _rows(decoded.batch.logs) == _rows(reference.batch.logs)
    assert decoded.batch.jobs == reference.batch.jobs
    assert decoded.batch.steps == reference.batch.steps


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(REQUESTS)
def test_any_request_decodes_as_the_reference_does(request: ExportLogsServiceRequest) -> None:
    reference, decoded = _both(request)
    _assert_same(reference, decoded)  # whichever path decode_logs took
    if log_columns(request.SerializeToString(), RECEIVED) is not None:
        assert reference.rejected == 0  # records to reject always go the reference way


def _plain_attrs() -> st.SearchStrategy[list[KeyValue]]:
    """Attribute lists the column-wise path must take: unique keys, string conventions."""
    return st.dictionaries(st.sampled_from(KEYS[10:]), PLAIN_VALUES, max_size=5).map(
        lambda d: [KeyValue(key=k, value=v) for k, v in d.items()]
    )


@needs_extension
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    attrs=_plain_attrs(),
    body=st.one_of(st.just(None), PLAIN_VALUES),
    step=st.one_of(st.none(), TEXT),
    severity=st.integers(1, 24),
    text=st.sampled_from(["", "INFO", "SUCCESS", "Warn"]),
    event=st.sampled_from(["", "job.started", "step.started", "job.heartbeat"]),
)
def test_what_clients_send_takes_the_column_path(
    attrs: list[KeyValue],
    body: AnyValue | None,
    step: str | None,
    severity: int,
    text: str,
    event: str,
) -> None:
    conventions = {"job.id": "j-1", "job.type": "import"}
    if step is not None:
        conventions["job.step"] = step
    record = LogRecord(
        time_unix_nano=NOW_NS,
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        severity_number=severity,
        severity_text=text,
        body=body,
        attributes=attrs + kv(conventions),
        event_name=event,
    )
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=kv({"service.name": "svc", "n": 1})),
                scope_logs=[ScopeLogs(scope=InstrumentationScope(name="s"), log_records=[record])],
            )
        ]
    )
    assert log_columns(request.SerializeToString(), RECEIVED) is not None
    _assert_same(*_both(request))


def _request_around(scope_logs_payload: bytes, resource: bytes = b"") -> bytes:
    return length_delimited(1, length_delimited(2, scope_logs_payload) + resource)


@needs_extension
def test_fields_in_any_wire_order() -> None:
    """Protobuf allows a message's fields in any order: a scope after its records, a
    resource after its scopes."""
    record = LogRecord(time_unix_nano=NOW_NS, body=AnyValue(string_value="x"))
    scope_logs = length_delimited(2, record.SerializeToString()) + length_delimited(
        1, InstrumentationScope(name="late").SerializeToString()
    )
    resource = length_delimited(
        1, Resource(attributes=kv({"service.name": "after"})).SerializeToString()
    )
    raw = _request_around(scope_logs, resource)
    request = ExportLogsServiceRequest.FromString(raw)
    columns = log_columns(raw, RECEIVED)
    assert columns is not None
    row = columns.table.to_pylist()[0]
    assert (row["scope_name"], row["service"], row["body"]) == ("late", "after", "x")
    assert (
        columns.table.to_pylist()
        == decode_logs_per_record(request, RECEIVED).batch.logs.to_pylist()
    )


@needs_extension
def test_a_body_repeated_on_the_wire_goes_the_reference_way() -> None:
    """A singular message sent twice is merged by protobuf; the column path declines it."""
    first = LogRecord(time_unix_nano=NOW_NS, body=AnyValue(string_value="first"))
    second = LogRecord(body=AnyValue(int_value=2))
    raw = _request_around(
        length_delimited(2, first.SerializeToString() + second.SerializeToString())
    )
    assert log_columns(raw, RECEIVED) is None
    request = ExportLogsServiceRequest.FromString(raw)
    decoded = decode_logs(request, raw, received=RECEIVED)
    assert decoded.batch.logs.column("body").to_pylist() == ["2"]  # the oneof's last member
    _assert_same(decode_logs_per_record(request, RECEIVED), decoded)


@needs_extension
@pytest.mark.parametrize(
    "value, body",
    [
        (AnyValue(double_value=1.0), "1.0"),
        (AnyValue(double_value=3.2e-5), "0.000032"),
        (AnyValue(double_value=1e-7), "1e-7"),
        (AnyValue(double_value=1e16), "1e+16"),
        (AnyValue(double_value=math.inf), "null"),
        (AnyValue(bool_value=True), "true"),
        (AnyValue(bytes_value=b"\xff\x00"), "/wA="),
        (AnyValue(int_value=-(2**63)), str(-(2**63))),
    ],
)
def test_non_string_bodies_are_written_as_json(value: AnyValue, body: str) -> None:
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                scope_logs=[ScopeLogs(log_records=[LogRecord(time_unix_nano=NOW_NS, body=value)])]
            )
        ]
    )
    columns = log_columns(request.SerializeToString(), RECEIVED)
    assert columns is not None
    assert columns.table.column("body").to_pylist() == [body]
    _assert_same(*_both(request))


@needs_extension
@pytest.mark.parametrize("duplicate", [False, True])
def test_many_attributes_and_a_late_duplicate(duplicate: bool) -> None:
    """Past 32 keys duplicates are found through a hash table: a repeated key among 200
    still sends the request the reference way (which keeps the last value)."""
    extra = kv({"k7": "again"}) if duplicate else []
    record = LogRecord(
        time_unix_nano=NOW_NS, attributes=kv({f"k{i}": i for i in range(200)}) + extra
    )
    request = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[record])])]
    )
    assert (log_columns(request.SerializeToString(), RECEIVED) is None) == duplicate
    reference, decoded = _both(request)
    _assert_same(reference, decoded)
    assert ('"k7":"again"' in decoded.batch.logs.column("attributes")[0].as_py()) == duplicate
