"""Shared by the receiver fuzz tests: both receivers live, the OTLP answer contract, strategies.

Both receivers run on real ports over one real BatchWriter and DuckDB file (one server per test
module, through the ``live`` fixture). Every answer must be one of the protocol's documented
ones (HTTP 200, 400, 413, 415 with a ``google.rpc.Status`` body on errors; gRPC OK,
INVALID_ARGUMENT, RESOURCE_EXHAUSTED), a rejected record must show in ``partial_success``, and
after each test the server still stores a valid request while the rows stored before are
unchanged (``still_serving``). Test modules import ``live_fixture``, ``sentinel_fixture`` and
``still_serving_fixture``: pytest registers them under their ``name=``.
"""

from __future__ import annotations

import asyncio
import collections
import http.client
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import status_pb2
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from otlp_build import log, logs_request, new_span_id, new_trace_id, span, traces_request

from jobtrail.collector import Ingestor, OtlpGrpcReceiver, create_receiver_app
from jobtrail.collector.http_receiver import receiver_runner
from jobtrail.collector.values import MAX_TIME_NS, MIN_TIME_NS
from jobtrail.storage import Database
from jobtrail.storage.writer import BatchWriter

PB = "application/x-protobuf"
JSON = "application/json"
KINDS = ("traces", "logs", "metrics")
REQUEST: dict[str, type[Message]] = {
    "traces": trace_pb.ExportTraceServiceRequest,
    "logs": logs_pb.ExportLogsServiceRequest,
    "metrics": metrics_pb.ExportMetricsServiceRequest,
}
RESPONSE: dict[str, type[Message]] = {
    "traces": trace_pb.ExportTraceServiceResponse,
    "logs": logs_pb.ExportLogsServiceResponse,
    "metrics": metrics_pb.ExportMetricsServiceResponse,
}
REJECTED = {
    "traces": "rejected_spans",
    "logs": "rejected_log_records",
    "metrics": "rejected_data_points",
}
METHOD = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
}
HTTP_ALLOWED = frozenset({200, 400, 413, 415})
GRPC_ALLOWED = frozenset(
    {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
MAX_BYTES = 4 * 1024 * 1024
FUZZ = settings(
    max_examples=int(os.environ.get("JOBTRAIL_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Every input tried, by test, for docs/reliability.md (printed at the end of the module).
TRIED: dict[str, int] = {}
#: Answers by transport and status, over the whole module.
ANSWERS: collections.Counter[str] = collections.Counter()


class LiveReceivers:
    """Both receivers on ephemeral ports, on an event loop of their own in a thread."""

    def __init__(self, db_path: Path, *, max_bytes: int = MAX_BYTES) -> None:
        self.db = Database(db_path)
        self.writer = BatchWriter(self.db)
        self.writer.start()
        self.ingestor = Ingestor(self.writer)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._call(self._start(max_bytes))
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{self.grpc.port}", options=[("grpc.max_send_message_length", -1)]
        )

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(120)

    async def _start(self, max_bytes: int) -> None:
        self.grpc = OtlpGrpcReceiver(self.ingestor, port=0, max_recv_bytes=max_bytes)
        await self.grpc.start()
        self.runner = receiver_runner(create_receiver_app(self.ingestor, max_bytes=max_bytes))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.http_port = self.runner.addresses[0][1]

    async def _stop(self) -> None:
        await self.grpc.stop(0)
        await self.runner.cleanup()

    def close(self) -> None:
        self.channel.close()
        self._call(self._stop())
        self.writer.close()
        self.db.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    # -- clients -------------------------------------------------------------------------
    def post(self, kind: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=60)
        try:
            conn.request("POST", f"/v1/{kind}", body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type") or "", resp.read()
        finally:
            conn.close()

    def export(
        self, kind: str, body: bytes, compression: grpc.Compression | None = None
    ) -> tuple[grpc.StatusCode, bytes]:
        try:
            raw = self.channel.unary_unary(METHOD[kind])(body, timeout=60, compression=compression)
        except grpc.RpcError as exc:
            return exc.code(), exc.details().encode()  # type: ignore[attr-defined]
        return grpc.StatusCode.OK, raw

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.db.cursor().execute(sql, params or []).fetchall()


# -- the contract ------------------------------------------------------------------------


def check_http(kind: str, status: int, ctype: str, data: bytes) -> int:
    """Assert an OTLP/HTTP answer is a documented one; return the records it rejected."""
    ANSWERS[f"http {status}"] += 1
    assert status in HTTP_ALLOWED, (status, data[:500])
    as_json = ctype.startswith(JSON)
    if status != 200:
        error = status_pb2.Status()
        if as_json:
            json_format.Parse(data, error)
        else:
            error.ParseFromString(data)
        assert error.code != 0 and error.message, (status, data[:300])
        return -1
    response = RESPONSE[kind]()
    if as_json:
        json_format.Parse(data, response)
    else:
        response.ParseFromString(data)
    return _rejected(kind, response)


def check_grpc(kind: str, code: grpc.StatusCode, data: bytes) -> int:
    """Assert a gRPC answer is a documented one; return the records it rejected."""
    ANSWERS[f"grpc {code.name}"] += 1
    assert code in GRPC_ALLOWED, (code, data[:500])
    if code != grpc.StatusCode.OK:
        assert data, "an error without a message"
        return -1
    return _rejected(kind, RESPONSE[kind].FromString(data))


def _rejected(kind: str, response: Message) -> int:
    if not response.HasField("partial_success"):
        return 0
    partial = response.partial_success  # type: ignore[attr-defined]
    rejected = int(getattr(partial, REJECTED[kind]))
    assert rejected > 0 and partial.error_message, f"partial_success without rejections: {partial}"
    return rejected


def send_both(live: LiveReceivers, kind: str, body: bytes, test: str) -> tuple[int, int]:
    """Send the same bytes over gRPC and as OTLP/HTTP protobuf; check both answers."""
    TRIED[test] = TRIED.get(test, 0) + 1
    code, data = live.export(kind, body)
    by_grpc = check_grpc(kind, code, data)
    status, ctype, data = live.post(kind, body, {"Content-Type": PB})
    by_http = check_http(kind, status, ctype, data)
    return by_grpc, by_http


# -- fixtures: one server for the module, checked after every test ----------------------------


@pytest.fixture(scope="module", name="live")
def live_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveReceivers]:
    receivers = LiveReceivers(tmp_path_factory.mktemp("fuzz") / "fuzz.duckdb")
    yield receivers
    receivers.close()
    print(
        f"\nfuzz inputs tried: {TRIED} (total {sum(TRIED.values())}); "
        f"answers {dict(sorted(ANSWERS.items()))}"
    )


SENTINEL_SQL = """
SELECT (SELECT count(*) || ':' || sum(hash(s)) FROM spans s WHERE service = 'sentinel'),
       (SELECT count(*) || ':' || sum(hash(l)) FROM logs l WHERE service = 'sentinel'),
       (SELECT count(*) || ':' || sum(hash(j)) FROM jobs j WHERE id = 'sentinel-job')
"""


@pytest.fixture(scope="module", name="sentinel")
def sentinel_fixture(live: LiveReceivers) -> tuple[Any, ...]:
    """Rows stored before any fuzzing; they must come through every test unchanged."""
    trace_id, root = new_trace_id(), new_span_id()
    job = {"job.type": "sentinel", "job.id": "sentinel-job"}
    spans = [span(trace_id, root, "sentinel", job)]
    spans += [span(trace_id, new_span_id(), "s", {"job.step": "s"}, parent=root)]
    code, _ = live.export("traces", traces_request(spans, "sentinel").SerializeToString())
    assert code == grpc.StatusCode.OK
    records = [log(trace_id, root, f"sentinel {i}", {"job.id": "sentinel-job"}) for i in range(3)]
    code, _ = live.export("logs", logs_request(records, "sentinel").SerializeToString())
    assert code == grpc.StatusCode.OK
    return live.rows(SENTINEL_SQL)[0]


@pytest.fixture(autouse=True, name="still_serving")
def still_serving_fixture(live: LiveReceivers, sentinel: tuple[Any, ...]) -> Iterator[None]:
    yield
    assert live.rows(SENTINEL_SQL)[0] == sentinel, "rows stored before the fuzzing changed"
    for transport in ("grpc", "http"):
        span_id = new_span_id()
        body = traces_request([span(new_trace_id(), span_id, "alive", {})]).SerializeToString()
        if transport == "grpc":
            assert live.export("traces", body)[0] == grpc.StatusCode.OK
        else:
            assert live.post("traces", body, {"Content-Type": PB})[0] == 200
        assert live.rows("SELECT count(*) FROM spans WHERE span_id = ?", [span_id.hex()]) == [(1,)]


# -- strategies ------------------------------------------------------------------------------

leaf_values = st.one_of(
    st.text(max_size=50).map(lambda s: AnyValue(string_value=s)),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: AnyValue(int_value=i)),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: AnyValue(double_value=f)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.binary(max_size=50).map(lambda b: AnyValue(bytes_value=b)),
    st.just(AnyValue()),
)
any_values = st.recursive(
    leaf_values,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
        st.lists(st.tuples(st.text(max_size=12), children), max_size=4).map(
            lambda kvs: AnyValue(
                kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs])
            )
        ),
    ),
    max_leaves=25,
)
attribute_lists = st.lists(
    st.tuples(st.one_of(st.text(max_size=20), st.sampled_from(["job.type", "job.id", "job.step",
              "job.progress", "event.name", "service.name", "job.status"])), any_values),
    max_size=8,
).map(lambda kvs: [KeyValue(key=k, value=v) for k, v in kvs])  # fmt: skip
timestamps = st.one_of(
    st.just(0),
    st.integers(0, 2**64 - 1),
    st.integers(MIN_TIME_NS, MAX_TIME_NS - 1),
    st.sampled_from(
        [1, MIN_TIME_NS - 1, MIN_TIME_NS, MAX_TIME_NS - 1, MAX_TIME_NS, 2**63, 2**64 - 1]
    ),
)
#: (length, all zeroes) of an id; the bytes themselves are made unique when the request is built.
id_specs = st.tuples(st.sampled_from([0, 1, 7, 8, 9, 15, 16, 17, 32]), st.booleans())


def _id(spec: tuple[int, bool]) -> bytes:
    length, zero = spec
    if zero:
        return b"\x00" * length
    raw = os.urandom(length)
    return raw if length == 0 or any(raw) else b"\x01" + raw[1:]


def _id_ok(spec: tuple[int, bool], size: int, *, required: bool) -> bool:
    length, zero = spec
    if length == 0 or (zero and length == size):
        return not required
    return length == size and not zero


def _time_ok(ns: int) -> bool:
    return ns == 0 or MIN_TIME_NS <= ns < MAX_TIME_NS


#: Any int32 now and then: proto3 enums are open, a client may send any value.
wide_enums = st.one_of(st.integers(0, 5), st.integers(0, 5), st.integers(-(2**31), 2**31 - 1))
span_specs = st.fixed_dictionaries(
    {
        "trace": id_specs, "span": id_specs, "parent": id_specs,
        "start": timestamps, "end": timestamps, "name": st.text(max_size=40),
        "kind": wide_enums, "status": wide_enums, "attrs": attribute_lists,
    }
)  # fmt: skip
log_specs = st.fixed_dictionaries(
    {
        "trace": id_specs, "span": id_specs, "time": timestamps, "observed": timestamps,
        "severity": st.one_of(st.integers(0, 24), wide_enums), "body": any_values,
        "attrs": attribute_lists,
        "event": st.sampled_from(["", "job.started", "job.progress", "step.started", "x"]),
    }
)  # fmt: skip


def _mostly_valid_id(size: int) -> st.SearchStrategy[tuple[int, bool]]:
    return st.one_of(st.just((size, False)), st.just((size, False)), id_specs)


mostly_valid_times = st.one_of(st.integers(MIN_TIME_NS, MAX_TIME_NS - 1), timestamps)


def _protobuf_request(draw: st.DrawFn, *, wide: bool = False) -> tuple[str, bytes]:
    """Spans or log records, most of them storable (so the fuzzing reaches the writer)."""
    kind = draw(st.sampled_from(["traces", "logs"]))
    enum = wide_enums if wide else st.just(0)
    if kind == "traces":
        spans = [
            Span(trace_id=_id(draw(_mostly_valid_id(16))), span_id=_id(draw(_mostly_valid_id(8))),
                 name=s["name"], start_time_unix_nano=draw(mostly_valid_times),
                 end_time_unix_nano=draw(mostly_valid_times), attributes=s["attrs"],
                 kind=draw(enum), status={"code": draw(enum)})  # type: ignore[arg-type]
            for s in draw(st.lists(span_specs, min_size=1, max_size=5))
        ]  # fmt: skip
        return kind, traces_request(spans).SerializeToString()
    records = [
        LogRecord(time_unix_nano=draw(mostly_valid_times), body=r["body"], attributes=r["attrs"],
                  event_name=r["event"], severity_number=draw(enum),
                  trace_id=_id(draw(_mostly_valid_id(16))), span_id=_id(draw(_mostly_valid_id(8))))  # type: ignore[arg-type]
        for r in draw(st.lists(log_specs, min_size=1, max_size=5))
    ]  # fmt: skip
    return kind, logs_request(records).SerializeToString()


@st.composite
def valid_requests(draw: st.DrawFn) -> tuple[str, bytes]:
    return _protobuf_request(draw)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, bytes]:
    """A request with a few bytes flipped, inserted, deleted, or cut off."""
    kind, body = _protobuf_request(draw, wide=True)
    data = bytearray(body)
    for _ in range(draw(st.integers(0, 3))):  # 0: the valid request itself
        op = draw(
            st.sampled_from(
                ["flip", "flip", "flip", "insert", "delete", "truncate", "duplicate", "varint"]
            )
        )
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[at:]
        elif op == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        elif op == "varint":  # a huge length prefix or varint where one may be expected
            data[at:at] = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"
    return kind, bytes(data)
