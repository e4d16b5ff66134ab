"""``jobtrail serve`` with and without the C decoders: logs and spans are stored either way,
and the server says at start when it decodes them in Python (README, "Two commands")."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from google.protobuf.message import Message
from otlp_build import log, logs_request, new_span_id, new_trace_id, span, traces_request

from e2e.harness import ServerProcess
from jobtrail.collector import log_columns, span_columns

NOTICE = "are decoded in Python"


def _post(srv: ServerProcess, path: str, request: Message) -> None:
    req = urllib.request.Request(
        f"{srv.http}{path}",
        data=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback test server
        assert resp.status == 200


def _post_logs(srv: ServerProcess, *bodies: str) -> None:
    records = [log(None, None, b, {"log.category": "decoder-test"}) for b in bodies]
    _post(srv, "/v1/logs", logs_request(records))


def _post_job(srv: ServerProcess) -> None:
    """A job span with one step span under it."""
    trace, job = new_trace_id(), new_span_id()
    spans = [
        span(trace, job, "decode", {"job.type": "decoder", "job.id": "decoder-job"}),
        span(trace, new_span_id(), "load", {"job.step": "load"}, parent=job),
    ]
    _post(srv, "/v1/traces", traces_request(spans))


def _stored(srv: ServerProcess) -> list[str]:
    return sorted(r["message"] for r in srv.get("/api/logs", category="decoder-test")["logs"])


def test_without_the_c_decoder_logs_are_stored_and_serve_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\n"  # as if never built:
        'sys.modules["jobtrail.collector._logwire"] = None\n'
        'sys.modules["jobtrail.collector._spanwire"] = None\n'
    )
    monkeypatch.setenv("PYTHONPATH", str(site))
    srv = ServerProcess(tmp_path)
    srv.start()
    try:
        _post_logs(srv, "first", "second")
        assert _stored(srv) == ["first", "second"]
        _post_job(srv)
        assert srv.get("/api/jobs/decoder-job")["steps"][0]["name"] == "load"
    finally:
        srv.stop()
    assert "log records and spans are decoded in Python" in (tmp_path / "server.log").read_text()


@pytest.mark.skipif(
    not (log_columns.AVAILABLE and span_columns.AVAILABLE), reason="the C decoders are not built"
)
def test_with_the_c_decoders_serve_is_quiet_about_it(server: ServerProcess) -> None:
    _post_logs(server, "only")
    assert _stored(server) == ["only"]
    _post_job(server)
    assert server.get("/api/jobs/decoder-job")["steps"][0]["name"] == "load"
    assert NOTICE not in (server.tmp / "server.log").read_text()
