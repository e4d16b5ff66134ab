"""otel-config.yaml: a full valid file, each kind of error, env substitution."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jobtrail.config import ConfigError, ServerConfig

FULL = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:14317
        max_recv_msg_size_mib: 8
        max_concurrent_streams: 16
      http:
        endpoint: ${env:HTTP_EP:-127.0.0.1:14318}
        max_recv_msg_size_mib: 2
processors:
  batch:
    send_batch_max_size: 20000
  memory_limiter:
    limit_mib: 512
    spike_limit_mib: 64
    check_interval: 250ms
exporters:
  duckdb:
    path: ${env:JT_TEST_DB}
    retention:
      max_age: 30d
extensions:
  bearertokenauth:
    token: ${env:JT_TOKEN:-secret}
service:
  extensions: [bearertokenauth]
  pipelines:
    traces: {receivers: [otlp], processors: [memory_limiter, batch], exporters: [duckdb]}
    logs: {receivers: [otlp], exporters: [duckdb]}
jobtrail:
  api:
    endpoint: 127.0.0.1:18080
"""


def test_full_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JT_TEST_DB", str(tmp_path / "x.duckdb"))
    monkeypatch.delenv("HTTP_EP", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text(FULL)
    cfg = ServerConfig.load(path)
    assert (cfg.grpc_host, cfg.grpc_port) == ("0.0.0.0", 14317)
    assert (cfg.http_host, cfg.http_port) == ("127.0.0.1", 14318)
    assert cfg.max_recv_bytes == 8 * 1024 * 1024
    assert cfg.grpc_max_concurrent_streams == 16
    assert cfg.http_max_recv_bytes == 2 * 1024 * 1024
    assert cfg.memory_limit_mib == 512 and cfg.memory_spike_limit_mib == 64
    assert cfg.memory_check_interval_s == 0.25
    assert cfg.batch_max_records == 20000
    assert cfg.db_path == str(tmp_path / "x.duckdb")
    assert cfg.api_port == 18080
    monkeypatch.setenv("HTTP_EP", "127.0.0.1:9999")
    assert ServerConfig.load(path).http_port == 9999


def test_repository_default_file_is_valid() -> None:
    cfg = ServerConfig.load(Path(__file__).parents[2] / "otel-config.yaml")
    assert cfg.grpc_port == 4317 and cfg.http_port == 4318 and cfg.api_port == 8080


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("receivers: {otlp: {protocols: {grpc: {endpiont: x}}}}", "receivers.otlp.protocols.grpc.endpiont: unknown key"),
        ("exporters: {duckdb: {path: 5}}", "exporters.duckdb.path: expected a string, got int"),
        ("processors: {memory_limiter: {limit_mib: true}}", "processors.memory_limiter.limit_mib: expected a number, got a boolean"),
        ("receivers: {otlp: {protocols: {grpc: {endpoint: nohost}}}}", "receivers.otlp.protocols.grpc.endpoint: expected host:port"),
        ("receivers: [1, 2]", "receivers: expected a mapping"),
        ("exporters: {duckdb: {path: '${env:JT_SURELY_UNSET_VAR}'}}", "exporters.duckdb.path: environment variable JT_SURELY_UNSET_VAR is not set"),
        ("processors: {memory_limiter: {check_interval: soon}}", "processors.memory_limiter.check_interval: expected a duration"),
        ("receivers: {otlp: {protocols: {grpc: {max_recv_msg_size_mib: 0}}}}", "max_recv_msg_size_mib: must be > 0"),
        ("receivers: {otlp: {protocols: {grpc: {max_concurrent_streams: 0}}}}", "grpc.max_concurrent_streams: must be at least 1"),
        ("receivers: {otlp: {protocols: {http: {max_concurrent_streams: 8}}}}", "receivers.otlp.protocols.http.max_concurrent_streams: unknown key"),
        ("exporters: {duckdb: {memory_limit: lots}}", "exporters.duckdb.memory_limit: expected a size"),
        ("exporters: {duckdb: {memory_limit: 1MiB}}", "exporters.duckdb.memory_limit: must be at least 16MiB"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, doc: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(doc)
    with pytest.raises(ConfigError) as info:
        ServerConfig.load(path)
    assert message in str(info.value)


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("receivers: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        ServerConfig.load(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        ServerConfig.load(tmp_path / "missing.yaml")


def test_serve_reports_config_errors_before_binding(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("receivers: {otlp: {protocols: {grpc: {endpiont: x}}}}")
    done = subprocess.run(
        [sys.executable, "-m", "jobtrail", "serve", "--config", str(path), "--db", str(tmp_path / "d.duckdb")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "receivers.otlp.protocols.grpc.endpiont: unknown key" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "d.duckdb").exists()
    ok = subprocess.run(
        [sys.executable, "-m", "jobtrail", "validate-config", str(Path(__file__).parents[2] / "otel-config.yaml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ok.returncode == 0


def test_duckdb_memory_limit_reaches_the_database(tmp_path: Path) -> None:
    from jobtrail.server import _open_storage

    cfg = ServerConfig.from_mapping({"exporters": {"duckdb": {"memory_limit": "96MiB"}}})
    assert cfg.db_memory_limit_bytes == 96 * 1024 * 1024
    db, _, _ = _open_storage(cfg.with_overrides(db_path=str(tmp_path / "m.duckdb")))
    try:
        setting = db.cursor().execute("SELECT current_setting('memory_limit')").fetchone()
        assert setting == ("96.0 MiB",)
    finally:
        db.close()
    default, _, _ = _open_storage(ServerConfig(db_path=str(tmp_path / "d.duckdb")))
    try:
        setting = default.cursor().execute("SELECT current_setting('memory_limit')").fetchone()
        assert setting != ("96.0 MiB",)
    finally:
        default.close()
