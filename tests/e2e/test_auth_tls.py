"""Bearer-token auth and TLS on both receivers and the API, with certificates made here."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc
from otlp_build import new_span_id, new_trace_id, span, traces_request

from e2e.harness import ServerProcess

TOKEN = "s3cret-token"


def _make_cert(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def secure_server(tmp_path: Path) -> Iterator[ServerProcess]:
    cert, key = _make_cert(tmp_path)
    secured = (
        f"{{tls: {{cert_file: '{cert}', key_file: '{key}'}}, "
        "auth: {authenticator: bearertokenauth}}"
    )
    config = f"""
receivers:
  otlp:
    protocols:
      grpc: {secured}
      http: {secured}
extensions:
  bearertokenauth:
    token: ${{env:JT_TEST_TOKEN:-{TOKEN}}}
jobtrail:
  api: {secured}
"""
    srv = ServerProcess(tmp_path, config)
    srv.start()
    yield srv
    srv.stop()


def _ssl(tmp: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tmp / "cert.pem"))


async def test_grpc_needs_tls_and_token(secure_server: ServerProcess) -> None:
    root = (secure_server.tmp / "cert.pem").read_bytes()
    req = traces_request([span(new_trace_id(), new_span_id(), "secure job", {"job.type": "t"})])
    async with grpc.aio.secure_channel(
        secure_server.grpc, grpc.ssl_channel_credentials(root_certificates=root)
    ) as channel:
        stub = trace_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Export(req, metadata=(("authorization", "Bearer wrong"),), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        await stub.Export(req, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=10)
    async with grpc.aio.insecure_channel(secure_server.grpc) as plain:
        with pytest.raises(grpc.aio.AioRpcError):
            await trace_grpc.TraceServiceStub(plain).Export(req, timeout=5)


def _request(url: str, ctx: ssl.SSLContext, token: str | None, data: bytes | None = None) -> int:
    headers = {"Content-Type": "application/x-protobuf"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:  # noqa: S310
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_http_and_api_need_token(secure_server: ServerProcess) -> None:
    assert secure_server.http.startswith("https://") and secure_server.api.startswith("https://")
    ctx = _ssl(secure_server.tmp)
    job = span(new_trace_id(), new_span_id(), "https job", {"job.type": "t"})
    body = traces_request([job]).SerializeToString()
    assert _request(f"{secure_server.http}/v1/traces", ctx, None, body) == 401
    assert _request(f"{secure_server.http}/v1/traces", ctx, "nope", body) == 401
    assert _request(f"{secure_server.http}/v1/traces", ctx, TOKEN, body) == 200
    assert _request(f"{secure_server.api}/metrics", ctx, None) == 401
    assert _request(f"{secure_server.api}/metrics", ctx, TOKEN) == 200
    assert _request(f"{secure_server.api}/healthz", ctx, None) == 200
    assert _request(f"{secure_server.api}/", ctx, None) == 200, "the page loads, then asks for the token"
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{secure_server.api}/healthz", timeout=10)  # noqa: S310 - untrusted cert
    req = urllib.request.Request(
        f"{secure_server.api}/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:  # noqa: S310
        jobs = json.loads(resp.read())["jobs"]
    assert [j["name"] for j in jobs] == ["https job"]
