"""OTLP/HTTP: protobuf and JSON on one port, gzip, and the spec's error answers."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from otlp_build import new_span_id, new_trace_id, span, traces_request

from jobtrail.collector import Ingestor, create_receiver_app
from jobtrail.storage import Database
from jobtrail.storage.writer import BatchWriter

PB = "application/x-protobuf"


@pytest.fixture
async def otlp(tmp_path: Path) -> AsyncIterator[tuple[TestClient, Database]]:
    db = Database(tmp_path / "db.duckdb")
    writer = BatchWriter(db)
    writer.start()
    client = TestClient(TestServer(create_receiver_app(Ingestor(writer), max_bytes=64 * 1024)))
    await client.start_server()
    try:
        yield client, db
    finally:
        await client.close()
        await asyncio.to_thread(writer.close)
        db.close()


def _names(db: Database) -> list[str]:
    return sorted(r[0] for r in db.cursor().execute("SELECT name FROM spans").fetchall())


async def test_protobuf_and_gzip(otlp: tuple[TestClient, Database]) -> None:
    client, db = otlp
    body = traces_request([span(new_trace_id(), new_span_id(), "pb", {})]).SerializeToString()
    resp = await client.post("/v1/traces", data=body, headers={"Content-Type": PB})
    assert resp.status == 200 and resp.content_type == PB
    assert not trace_pb.ExportTraceServiceResponse.FromString(await resp.read()).HasField(
        "partial_success"
    )
    body = traces_request([span(new_trace_id(), new_span_id(), "pbgz", {})]).SerializeToString()
    resp = await client.post(
        "/v1/traces",
        data=gzip.compress(body),
        headers={"Content-Type": PB, "Content-Encoding": "gzip"},
    )
    assert resp.status == 200
    assert _names(db) == ["pb", "pbgz"]


async def test_json_per_spec(otlp: tuple[TestClient, Database]) -> None:
    client, db = otlp
    trace_id = new_trace_id().hex().upper()
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "js"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": new_span_id().hex(),
                                "name": "json job",
                                "kind": 1,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": 1700000000500000000,
                                "attributes": [
                                    {"key": "job.type", "value": {"stringValue": "sync"}},
                                    {"key": "job.total_steps", "value": {"intValue": "4"}},
                                ],
                                "someFutureField": True,
                            }
                        ]
                    }
                ],
            }
        ]
    }
    resp = await client.post("/v1/traces", json=doc)
    assert resp.status == 200 and resp.content_type == "application/json"
    assert await resp.json() == {}
    row = (
        db.cursor().execute("SELECT trace_id, type, total_steps, duration_ms FROM jobs").fetchone()
    )
    assert row == (trace_id.lower(), "sync", 4, 500.0)


async def test_partial_success_in_json(otlp: tuple[TestClient, Database]) -> None:
    client, db = otlp
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": new_trace_id().hex(), "spanId": new_span_id().hex(), "name": "ok"},
        {"traceId": new_trace_id().hex(), "spanId": "abcd", "name": "short"},
    ]}]}]}  # fmt: skip
    resp = await client.post("/v1/traces", json=doc)
    assert resp.status == 200
    body = await resp.json()
    assert body["partialSuccess"]["rejectedSpans"] == "1"
    assert "span_id has 2 bytes" in body["partialSuccess"]["errorMessage"]
    assert _names(db) == ["ok"]


@pytest.mark.parametrize(
    ("method", "path", "ctype", "body", "status"),
    [
        ("POST", "/v1/traces", PB, b"\xff\xff garbage", 400),
        ("POST", "/v1/traces", "application/json", b"{not json", 400),
        (
            "POST",
            "/v1/traces",
            "application/json",
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            400,
        ),
        ("POST", "/v1/traces", "text/plain", b"hello", 415),
        ("POST", "/v1/nothing", PB, b"", 404),
        ("GET", "/v1/traces", PB, b"", 405),
        ("POST", "/v1/traces", PB, b"x" * (64 * 1024 + 1), 413),
    ],
)
async def test_errors_carry_a_status_body(
    otlp: tuple[TestClient, Database], method: str, path: str, ctype: str, body: bytes, status: int
) -> None:
    client, db = otlp
    resp = await client.request(method, path, data=body, headers={"Content-Type": ctype})
    assert resp.status == status
    raw = await resp.read()
    if resp.content_type == "application/json":
        message = json.loads(raw)["message"]
    else:
        message = status_pb2.Status.FromString(raw).message
    assert message
    assert _names(db) == []


async def test_gzip_bomb_is_refused(otlp: tuple[TestClient, Database]) -> None:
    client, db = otlp
    bomb = gzip.compress(b"\x00" * (10 * 1024 * 1024))
    assert len(bomb) < 64 * 1024
    resp = await client.post(
        "/v1/logs", data=bomb, headers={"Content-Type": PB, "Content-Encoding": "gzip"}
    )
    assert resp.status == 413
    assert "inflated" in status_pb2.Status.FromString(await resp.read()).message


async def test_full_queue_is_503_with_retry_after(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.duckdb")
    writer = BatchWriter(db, max_queued_records=1)  # not started: nothing drains
    client = TestClient(TestServer(create_receiver_app(Ingestor(writer))))
    await client.start_server()
    try:
        t = new_trace_id()
        first = asyncio.ensure_future(client.post(
            "/v1/traces", data=traces_request([span(t, new_span_id(), "a", {})]).SerializeToString(),
            headers={"Content-Type": PB},
        ))  # fmt: skip
        await asyncio.sleep(0.2)
        resp = await client.post(
            "/v1/traces", json={"resourceSpans": [{"scopeSpans": [{"spans": [
                {"traceId": t.hex(), "spanId": new_span_id().hex(), "name": "b"}]}]}]},
        )  # fmt: skip
        assert resp.status == 503 and int(resp.headers["Retry-After"]) >= 1
        assert "busy" in (await resp.json())["message"]
        writer.start()
        assert (await first).status == 200
    finally:
        await client.close()
        await asyncio.to_thread(writer.close)
        db.close()
