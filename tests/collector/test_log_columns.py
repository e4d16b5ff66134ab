"""The column-wise log decoder (C) agrees with the per-record reference decoder.

Every request below is decoded both ways with the same receive time; where the column-wise
path takes a request its table must equal the reference's value for value (attribute JSON
byte for byte, as orjson writes it), and its job/step updates too. Requests it declines
must be exactly the kinds it documents declining.
"""

from __future__ import annotations

import math
import shutil
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from otlp_build import kv, length_delimited

from jobtrail.collector.decode import decode_logs, decode_logs_per_record
from jobtrail.collector.log_columns import AVAILABLE, log_columns

needs_extension = pytest.mark.skipif(not AVAILABLE, reason="the _logwire extension is not built")

RECEIVED = 1_764_000_000_000_000
NOW_NS = 1_764_000_000_000_000_000
KEYS = [
    "job.id", "job.step", "job.type", "event.name", "log.category", "log.iostream",
    "exception.type", "exception.message", "exception.stacktrace", "service.name",
    "k", "ключ", 'q"uote', "back\\slash", "ctl\x01", "",
]  # fmt: skip
TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12
) | st.sampled_from(["", "a\nb", 'say "hi"', "tab\there", "\x00\x1f\x7f", "é€𝄞", "\\"])
DOUBLES = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 1.0, 1e16, 1e-5, 3.2e-5, 1e-7, 0.1, 123456789.123, 5e-324]
)


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``bad`` one time in fifty: a request has many values, and one bad one sends all of
    it the reference way."""
    return st.integers(0, 49).flatmap(lambda i: bad if i == 0 else good)


def _scalar() -> st.SearchStrategy[AnyValue]:
    return st.one_of(
        TEXT.map(lambda s: AnyValue(string_value=s)),
        st.booleans().map(lambda b: AnyValue(bool_value=b)),
        st.integers(-(2**63), 2**63 - 1).map(lambda i: AnyValue(int_value=i)),
        DOUBLES.map(lambda d: AnyValue(double_value=d)),
        st.binary(max_size=7).map(lambda b: AnyValue(bytes_value=b)),
        st.just(AnyValue()),
    )


def _nested(
    children: st.SearchStrategy[AnyValue], *, unique: bool = False
) -> st.SearchStrategy[AnyValue]:
    pairs = (
        st.dictionaries(st.sampled_from(KEYS), children, max_size=3).map(lambda d: list(d.items()))
        if unique
        else st.lists(st.tuples(st.sampled_from(KEYS), children), max_size=3)
    )
    return st.one_of(
        st.lists(children, max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
        pairs.map(
            lambda kvs: AnyValue(
                kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs])
            )
        ),
    )


VALUES = st.recursive(_scalar(), _nested, max_leaves=6)
#: Values without duplicate keys in their maps: what SDKs send.
PLAIN_VALUES = st.recursive(_scalar(), lambda c: _nested(c, unique=True), max_leaves=6)
_STRINGS = TEXT.map(lambda s: AnyValue(string_value=s))
ATTRS = _mostly(
    st.tuples(
        st.dictionaries(st.sampled_from(KEYS[:10]), _STRINGS, max_size=3),
        st.dictionaries(st.sampled_from(KEYS[10:]), PLAIN_VALUES, max_size=4),
    ).map(lambda ds: [*ds[0].items(), *ds[1].items()]),
    st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=6),  # duplicates, non-strings
).map(lambda kvs: [KeyValue(key=k, value=v) for k, v in kvs])


def _id(size: int) -> st.SearchStrategy[bytes]:
    return _mostly(
        st.one_of(st.binary(min_size=size, max_size=size), st.just(b""), st.just(b"\0" * size)),
        st.binary(min_size=1, max_size=size + 2),  # wrong lengths: records to reject
    )


TIMES = _mostly(
    st.one_of(
        st.just(0),
        st.integers(NOW_NS - 10**15, NOW_NS + 10**15),
        st.sampled_from([946_684_800 * 10**9, 7_258_118_400 * 10**9 - 1]),
    ),
    st.sampled_from([1, 7_258_118_400 * 10**9, 2**64 - 1]),
)
RECORDS = st.builds(
    LogRecord,
    time_unix_nano=TIMES,
    observed_time_unix_nano=TIMES,
    severity_number=_mostly(st.integers(0, 24), st.sampled_from([25, -1])),
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
    body=st.one_of(st.just(None), _mostly(PLAIN_VALUES, VALUES)),
    attributes=ATTRS,
    trace_id=_id(16),
    span_id=_id(8),
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


def test_the_extension_is_built_wherever_it_can_be() -> None:
    """With a C compiler and Python's headers the install builds it; the build is optional,
    so a compile error would otherwise pass unnoticed, every test above skipped."""
    headers = Path(sysconfig.get_paths()["include"], "Python.h").exists()
    if not (headers and (shutil.which("cc") or shutil.which("gcc"))):
        pytest.skip("no C compiler or Python headers here: the Python decoder is used")
    assert AVAILABLE
