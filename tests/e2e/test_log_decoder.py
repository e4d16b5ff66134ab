"""``jobtrail serve`` with and without the C log decoder: logs are stored either way, and
the server says at start when it decodes them in Python (README, "Two commands")."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from otlp_build import log, logs_request

from e2e.harness import ServerProcess
from jobtrail.collector.log_columns import AVAILABLE

NOTICE = "log records are decoded in Python"


def _post_logs(srv: ServerProcess, *bodies: str) -> None:
    request = logs_request([log(None, None, b, {"log.category": "decoder-test"}) for b in bodies])
    req = urllib.request.Request(
        f"{srv.http}/v1/logs",
        data=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback test server
        assert resp.status == 200


def _stored(srv: ServerProcess) -> list[str]:
    return sorted(r["message"] for r in srv.get("/api/logs", category="decoder-test")["logs"])


def test_without_the_c_decoder_logs_are_stored_and_serve_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        'import sys\nsys.modules["jobtrail.collector._logwire"] = None  # as if never built\n'
    )
    monkeypatch.setenv("PYTHONPATH", str(site))
    srv = ServerProcess(tmp_path)
    srv.start()
    try:
        _post_logs(srv, "first", "second")
        assert _stored(srv) == ["first", "second"]
    finally:
        srv.stop()
    assert NOTICE in (tmp_path / "server.log").read_text()


@pytest.mark.skipif(not AVAILABLE, reason="the C log decoder is not built here")
def test_with_the_c_decoder_serve_is_quiet_about_it(server: ServerProcess) -> None:
    _post_logs(server, "only")
    assert _stored(server) == ["only"]
    assert NOTICE not in (server.tmp / "server.log").read_text()
