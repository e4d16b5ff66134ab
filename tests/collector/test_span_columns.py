"""The column-wise span decoder (C) agrees with the per-span reference decoder.

Every request below is decoded both ways with the same receive time; where the column-wise
path takes a request its table must equal the reference's value for value (attribute,
event and link JSON byte for byte, as orjson writes it), and its job and step updates too.
"""

from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from otlp_build import kv, length_delimited, log, logs_request, span, traces_request
from otlp_strategies import ATTRS, NOW_NS, PLAIN_VALUES, RECEIVED, TEXT, TIMES, VALUES, ids, mostly

from jobtrail.collector import log_columns, span_columns
from jobtrail.collector.decode import decode_traces, decode_traces_per_span

needs_extension = pytest.mark.skipif(
    not span_columns.AVAILABLE, reason="the _spanwire extension is not built"
)

#: Keys the conventions read (any value type: the conventions convert them in Python).
CONVENTION_KEYS = [
    "job.type", "job.step", "job.id", "job.name", "job.status", "job.step.seq",
    "job.step.status", "job.attempt", "job.result", "job.metadata.team", "cicd.pipeline.name",
    "cicd.pipeline.task.name", "cicd.pipeline.result", "exception.message", "rows",
]  # fmt: skip
SPAN_ATTRS = mostly(
    st.dictionaries(st.sampled_from(CONVENTION_KEYS), PLAIN_VALUES, max_size=6).map(
        lambda d: list(d.items())
    ),
    st.lists(st.tuples(st.sampled_from(CONVENTION_KEYS), VALUES), max_size=6),  # duplicates
).map(lambda kvs: [KeyValue(key=k, value=v) for k, v in kvs])
EVENTS = st.lists(
    st.builds(
        Span.Event,
        time_unix_nano=st.integers(0, 2**64 - 1),
        name=st.sampled_from(["", "exception", "retry"]) | TEXT,
        attributes=SPAN_ATTRS,
    ),
    max_size=2,
)
LINKS = st.lists(
    st.builds(
        Span.Link,
        trace_id=st.binary(max_size=17),
        span_id=st.binary(max_size=9),
        attributes=ATTRS,
    ),
    max_size=2,
)


def _required_id(size: int) -> st.SearchStrategy[bytes]:
    """A span's own ids: set and not all zeroes, but for one in fifty (a span to reject)."""
    return mostly(st.binary(min_size=size, max_size=size).filter(any), ids(size))


SPANS = st.builds(
    Span,
    trace_id=_required_id(16),
    span_id=_required_id(8),
    parent_span_id=ids(8),
    name=TEXT,
    kind=mostly(st.integers(0, 5), st.sampled_from([6, -1])),
    start_time_unix_nano=TIMES,
    end_time_unix_nano=TIMES,
    attributes=SPAN_ATTRS,
    events=EVENTS,
    links=LINKS,
    status=st.one_of(
        st.just(None),
        st.builds(Status, code=mostly(st.integers(0, 2), st.just(3)), message=TEXT),
    ),
)
REQUESTS = st.lists(
    st.builds(
        ResourceSpans,
        resource=st.one_of(st.just(None), st.builds(Resource, attributes=ATTRS)),
        scope_spans=st.lists(
            st.builds(
                ScopeSpans,
                scope=st.one_of(
                    st.just(None), st.builds(InstrumentationScope, name=TEXT, version=TEXT)
                ),
                spans=st.lists(SPANS, min_size=1, max_size=4),
            ),
            min_size=1,
            max_size=2,
        ),
    ),
    min_size=1,
    max_size=2,
).map(lambda rss: ExportTraceServiceRequest(resource_spans=rss))


def _rows(table: Any) -> list[dict[str, Any]]:
    return [] if table is None else table.to_pylist()


def _assert_same(reference: Any, decoded: Any) -> None:
    assert (decoded.rejected, decoded.errors) == (reference.rejected, reference.errors)
    assert _rows(decoded.batch.spans) == _rows(reference.batch.spans)
    # repr: user attributes may hold NaN, which never equals itself
    assert repr(decoded.batch.jobs) == repr(reference.batch.jobs)
    assert repr(decoded.batch.steps) == repr(reference.batch.steps)


def _both(request: ExportTraceServiceRequest, raw: bytes | None = None) -> tuple[Any, Any]:
    return (
        decode_traces_per_span(request, RECEIVED),
        decode_traces(request, raw, received=RECEIVED),
    )


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(REQUESTS)
def test_any_request_decodes_as_the_reference_does(request: ExportTraceServiceRequest) -> None:
    reference, decoded = _both(request)
    _assert_same(reference, decoded)  # whichever path decode_traces took
    if span_columns.span_columns(request.SerializeToString(), RECEIVED) is not None:
        assert reference.rejected == 0  # spans to reject always go the reference way


@needs_extension
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    attrs=st.dictionaries(st.sampled_from(["rows", "table", "ключ"]), PLAIN_VALUES, max_size=4),
    step=st.booleans(),
    failed=st.booleans(),
    message=TEXT,
    duration_ns=st.integers(0, 10**12),
)
def test_jobs_and_steps_clients_send_take_the_column_path(
    attrs: dict[str, AnyValue], step: bool, failed: bool, message: str, duration_ns: int
) -> None:
    conventions = {"job.id": "j-1"} | (
        {"job.step": "load", "job.step.seq": 2} if step else {"job.type": "import"}
    )
    span = Span(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        parent_span_id=b"\x03" * 8 if step else b"",
        name="load rows",
        kind=1,
        start_time_unix_nano=NOW_NS,
        end_time_unix_nano=NOW_NS + duration_ns,
        attributes=[KeyValue(key=k, value=v) for k, v in attrs.items()] + kv(conventions),
        events=[
            Span.Event(
                name="exception",
                time_unix_nano=NOW_NS,
                attributes=kv({"exception.type": "ValueError", "exception.message": "bad row"}),
            )
        ]
        if failed
        else [],  # fmt: skip
        status=Status(code=2 if failed else 1, message=message),
    )
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=kv({"service.name": "svc"})),
                scope_spans=[
                    ScopeSpans(scope=InstrumentationScope(name="s", version="1"), spans=[span])
                ],
            )
        ]
    )
    columns = span_columns.span_columns(request.SerializeToString(), RECEIVED)
    assert columns is not None
    assert len(columns.candidates) == 1
    reference, decoded = _both(request)
    _assert_same(reference, decoded)
    assert len(decoded.batch.steps if step else decoded.batch.jobs) == 1


@needs_extension
def test_a_status_repeated_on_the_wire_goes_the_reference_way() -> None:
    """A singular message sent twice is merged by protobuf; the column path declines it."""
    first = Span(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        start_time_unix_nano=NOW_NS,
        status=Status(code=2, message="first"),
    )
    second = Span(status=Status(message="second"))
    raw = length_delimited(
        1,
        length_delimited(
            2, length_delimited(2, first.SerializeToString() + second.SerializeToString())
        ),
    )
    assert span_columns.span_columns(raw, RECEIVED) is None
    request = ExportTraceServiceRequest.FromString(raw)
    reference, decoded = _both(request, raw)
    row = decoded.batch.spans.to_pylist()[0]
    assert (row["status_code"], row["status_message"]) == (2, "second")  # merged
    _assert_same(reference, decoded)


@needs_extension
def test_events_and_links_are_written_as_json() -> None:
    span = Span(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        events=[Span.Event(name='say "hi"', time_unix_nano=2**64 - 1, attributes=kv({"n": 1}))],
        links=[Span.Link(trace_id=b"\xab", span_id=b"", attributes=kv({"f": 0.5}))],
    )
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    )
    columns = span_columns.span_columns(request.SerializeToString(), RECEIVED)
    assert columns is not None
    row = columns.table.to_pylist()[0]
    assert row["events"] == (
        '[{"name":"say \\"hi\\"","time_unix_nano":18446744073709551615,"attributes":{"n":1}}]'
    )
    assert row["links"] == '[{"trace_id":"ab","span_id":"","attributes":{"f":0.5}}]'
    assert row["duration_ms"] is None and row["start_time"] is None
    _assert_same(*_both(request))


@pytest.mark.parametrize("module", [log_columns, span_columns], ids=["logs", "spans"])
def test_the_extensions_are_built_wherever_they_can_be(module: Any) -> None:
    """With a C compiler and Python's headers the install builds them; the build is
    optional, so a compile error would otherwise pass unnoticed, every C test skipped."""
    headers = Path(sysconfig.get_paths()["include"], "Python.h").exists()
    if not (headers and (shutil.which("cc") or shutil.which("gcc"))):
        pytest.skip("no C compiler or Python headers here: the Python decoders are used")
    assert module.AVAILABLE


@needs_extension
@pytest.mark.parametrize("duplicate", [False, True])
def test_many_attributes_and_a_late_duplicate(duplicate: bool) -> None:
    """Past 32 keys duplicates are found through a hash table: a repeated key among 200
    still sends the request the reference way (which keeps the last value)."""
    attrs = {f"k{i}": i for i in range(200)} | {"job.step": "load"}
    extra = kv({"k7": "again"}) if duplicate else []
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, attributes=kv(attrs) + extra, name="s")
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    )
    columns = span_columns.span_columns(request.SerializeToString(), RECEIVED)
    assert (columns is None) == duplicate
    reference, decoded = _both(request)
    _assert_same(reference, decoded)
    assert decoded.batch.steps[0].attributes["k7"] == ("again" if duplicate else 7)


def _rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@needs_extension
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc")
def test_column_buffers_are_freed_with_their_tables() -> None:
    """The decoders hand their buffers to Arrow, which frees them with the table: decoding
    the same requests over and over must not grow the process (a leak of the buffers alone
    would add over 300 MiB here)."""
    attrs = {"job.id": "j-1", "job.step": "load", "rows": 12345, "table": "events"}
    logs = logs_request([log(b"\x01" * 16, b"\x02" * 8, f"line {i}", attrs) for i in range(512)])
    spans = traces_request(
        [span(b"\x01" * 16, bytes([1, 2, 3, 4, 5, 6, 7, i]), "s", attrs) for i in range(200)]
    )
    bodies = [
        (log_columns.log_columns, logs.SerializeToString()),
        (span_columns.span_columns, spans.SerializeToString()),
    ]
    for decode, body in bodies:  # warm up: allocator pools, imports
        for _ in range(50):
            assert decode(body, RECEIVED) is not None
    before = _rss_mib()
    for _ in range(600):
        for decode, body in bodies:
            assert decode(body, RECEIVED) is not None
    assert _rss_mib() - before < 40
