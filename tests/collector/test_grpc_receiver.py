"""The OTLP/gRPC receiver on a real port: success, partial success, invalid payloads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as logs_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc
from opentelemetry.proto.metrics.v1.metrics_pb2 import NumberDataPoint
from otlp_build import log, logs_request, new_span_id, new_trace_id, span, traces_request

from jobtrail.collector import Ingestor, OtlpGrpcReceiver
from jobtrail.storage import Database
from jobtrail.storage.writer import BatchWriter


@dataclass
class Server:
    db: Database
    channel: grpc.aio.Channel


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    db = Database(tmp_path / "db.duckdb")
    writer = BatchWriter(db)
    writer.start()
    receiver = OtlpGrpcReceiver(Ingestor(writer), port=0)
    await receiver.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{receiver.port}")
    try:
        yield Server(db, channel)
    finally:
        await channel.close()
        await receiver.stop()
        await asyncio.to_thread(writer.close)
        db.close()


def _count(db: Database, table: str) -> int:
    row = db.cursor().execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


async def test_valid_spans_are_stored_before_the_answer(server: Server) -> None:
    t = new_trace_id()
    req = traces_request([span(t, new_span_id(), "job", {"job.type": "x"})])
    resp = await trace_grpc.TraceServiceStub(server.channel).Export(req)
    assert not resp.HasField("partial_success")
    assert _count(server.db, "spans") == 1 and _count(server.db, "jobs") == 1


async def test_invalid_spans_are_rejected_one_by_one(server: Server) -> None:
    t = new_trace_id()
    good = span(t, new_span_id(), "good", {})
    short_id = span(t, b"\x01\x02", "short", {})
    zero_trace = span(b"\x00" * 16, new_span_id(), "zero", {})
    absurd_time = span(t, new_span_id(), "old", {}, start_ns=5)
    req = traces_request([good, short_id, zero_trace, absurd_time])
    resp = await trace_grpc.TraceServiceStub(server.channel).Export(req)
    assert resp.partial_success.rejected_spans == 3
    assert "span_id has 2 bytes" in resp.partial_success.error_message
    names = [r[0] for r in server.db.cursor().execute("SELECT name FROM spans").fetchall()]
    assert names == ["good"]


async def test_undecodable_payload_is_invalid_argument_and_stores_nothing(server: Server) -> None:
    await logs_grpc.LogsServiceStub(server.channel).Export(
        logs_request([log(None, None, "before")])
    )
    export = server.channel.unary_unary(
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        request_serializer=lambda b: b,
        response_deserializer=logs_pb.ExportLogsServiceResponse.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await export(b"\xff\xff\xff garbage")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "undecodable logs request" in (info.value.details() or "")
    assert [r[0] for r in server.db.cursor().execute("SELECT body FROM logs").fetchall()] == [
        "before"
    ]


async def test_empty_request_succeeds(server: Server) -> None:
    resp = await trace_grpc.TraceServiceStub(server.channel).Export(traces_request([]))
    assert not resp.HasField("partial_success")


async def test_metrics_are_accepted_and_stored(server: Server) -> None:
    req = metrics_pb.ExportMetricsServiceRequest()
    metric = req.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "jobs.processed"
    metric.sum.data_points.append(NumberDataPoint(as_int=7, time_unix_nano=1_700_000_000 * 10**9))
    await metrics_grpc.MetricsServiceStub(server.channel).Export(req)
    row = server.db.cursor().execute("SELECT name, type, value FROM metrics").fetchone()
    assert row == ("jobs.processed", "sum", 7.0)


async def test_request_over_the_limit_is_resource_exhausted(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.duckdb")
    writer = BatchWriter(db)
    writer.start()
    receiver = OtlpGrpcReceiver(Ingestor(writer), port=0, max_recv_bytes=2048)
    await receiver.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
            t = new_trace_id()
            big = traces_request([span(t, new_span_id(), "x" * 4096, {})])
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await trace_grpc.TraceServiceStub(channel).Export(big)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            small = traces_request([span(t, new_span_id(), "ok", {})])
            await trace_grpc.TraceServiceStub(channel).Export(small)
        assert _count(db, "spans") == 1
    finally:
        await receiver.stop()
        await asyncio.to_thread(writer.close)
        db.close()


async def test_full_queue_is_unavailable_with_retry_info(tmp_path: Path) -> None:
    from google.rpc import error_details_pb2, status_pb2

    db = Database(tmp_path / "db.duckdb")
    writer = BatchWriter(db, max_queued_records=1)
    receiver = OtlpGrpcReceiver(Ingestor(writer), port=0)  # writer not started: nothing drains
    await receiver.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
            stub = trace_grpc.TraceServiceStub(channel)
            t = new_trace_id()
            first = asyncio.ensure_future(stub.Export(traces_request([span(t, new_span_id(), "a", {})])))
            await asyncio.sleep(0.2)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Export(traces_request([span(t, new_span_id(), "b", {})]))
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            details = dict(info.value.trailing_metadata() or ())["grpc-status-details-bin"]
            status = status_pb2.Status.FromString(details)
            retry = error_details_pb2.RetryInfo()
            assert status.details[0].Unpack(retry) and retry.retry_delay.seconds >= 1
            writer.start()
            await first
        assert _count(db, "spans") == 1
    finally:
        await receiver.stop()
        await asyncio.to_thread(writer.close)
        db.close()


async def test_a_retried_request_is_stored_once_even_across_restarts(tmp_path: Path) -> None:
    t = new_trace_id()
    traces = traces_request([span(t, new_span_id(), "job", {"job.type": "x"})])
    logs = logs_request([log(t, None, "line", {"job.id": "j"}), log(t, None, "line", {"job.id": "j"})])
    for _ in range(2):  # the second round is a restarted server on the same file
        db = Database(tmp_path / "db.duckdb")
        writer = BatchWriter(db)
        writer.start()
        receiver = OtlpGrpcReceiver(Ingestor(writer), port=0)
        await receiver.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
            for _ in range(2):
                await trace_grpc.TraceServiceStub(channel).Export(traces)
                await logs_grpc.LogsServiceStub(channel).Export(logs)
        await receiver.stop()
        await asyncio.to_thread(writer.close)
        assert (_count(db, "spans"), _count(db, "logs"), _count(db, "jobs")) == (1, 2, 1)
        db.close()


async def test_calls_beyond_the_stream_limit_wait_in_the_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One connection may have ``max_concurrent_streams`` Export calls in the server; the
    others wait in the client (nothing refused, nothing lost), which bounds the request
    bodies the server holds under overload."""
    db = Database(tmp_path / "db.duckdb")
    writer = BatchWriter(db)
    writer.start()
    inside, most = 0, 0
    export = Ingestor.export

    async def slow_export(self: Ingestor, *args: object, **kwargs: object) -> object:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        try:
            await asyncio.sleep(0.2)
            return await export(self, *args, **kwargs)  # type: ignore[arg-type]
        finally:
            inside -= 1

    monkeypatch.setattr(Ingestor, "export", slow_export)
    receiver = OtlpGrpcReceiver(Ingestor(writer), port=0, max_concurrent_streams=2)
    await receiver.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
            stub = trace_grpc.TraceServiceStub(channel)
            t = new_trace_id()

            async def send(name: str) -> None:
                # A stream the client opens while the server still counts a finished one
                # (or before its SETTINGS arrived) is refused: RST_STREAM REFUSED_STREAM,
                # UNAVAILABLE to the caller, which retries as OTel exporters do.
                for _ in range(50):
                    try:
                        await stub.Export(traces_request([span(t, new_span_id(), name, {})]))
                        return
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() != grpc.StatusCode.UNAVAILABLE:
                            raise
                        await asyncio.sleep(0.05)
                raise AssertionError(f"{name} refused 50 times")

            await asyncio.wait_for(asyncio.gather(*(send(f"s{i}") for i in range(8))), 60)
        assert most == 2
        assert _count(db, "spans") == 8
    finally:
        await receiver.stop()
        await asyncio.to_thread(writer.close)
        db.close()
