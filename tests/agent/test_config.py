"""Option resolution: explicit, then env, then defaults."""

from __future__ import annotations

import logging

import pytest

from jobtrail.agent._config import probe_target, resolve_config
from jobtrail.agent._pipeline import _exporter_kwargs


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_BLRP_SCHEDULE_DELAY",
    ):
        monkeypatch.delenv(name, raising=False)
    config = resolve_config()
    assert config.protocol == "grpc"
    assert config.probe_endpoint == "http://localhost:4317"
    assert config.max_queue_size == 100_000
    assert config.log_export_delay_ms == 200
    assert config.max_data_len == 1024
    assert config.console is False and config.capture_logging is True


def test_env_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("JOBTRAIL_CONSOLE", "true")
    monkeypatch.setenv("JOBTRAIL_MAX_DATA_LEN", "64")
    config = resolve_config()
    assert config.protocol == "http/protobuf"
    assert config.endpoint is None  # exporters resolve env (incl. per-signal) themselves
    assert probe_target(config.probe_endpoint) == ("collector", 4318)
    assert config.console is True and config.max_data_len == 64
    assert resolve_config(max_data_len=100, console=False).max_data_len == 100


def test_bad_env_warns_and_uses_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("JOBTRAIL_MAX_QUEUE_SIZE", "lots")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with caplog.at_level(logging.WARNING, logger="jobtrail.agent._config"):
        config = resolve_config()
    assert config.max_queue_size == 100_000 and config.protocol == "grpc"
    assert "JOBTRAIL_MAX_QUEUE_SIZE" in caplog.text and "http/json" in caplog.text


def test_min_level_from_argument_or_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBTRAIL_MIN_LEVEL", raising=False)
    assert resolve_config().min_level == "debug"
    assert resolve_config(min_level="WARNING").min_level == "warn"
    monkeypatch.setenv("JOBTRAIL_MIN_LEVEL", "Info")
    assert resolve_config().min_level == "info"
    assert resolve_config(min_level="error").min_level == "error"
    monkeypatch.setenv("JOBTRAIL_MIN_LEVEL", "loud")
    assert resolve_config().min_level == "debug"  # a bad env value warns, as the others do


def test_bad_min_level_names_the_levels() -> None:
    with pytest.raises(ValueError, match="min_level must be one of debug, info, success, warn"):
        resolve_config(min_level="verbose")


@pytest.mark.parametrize(
    "kwargs",
    [{"protocol": "http/json"}, {"max_data_len": 4}, {"max_queue_size": 0}, {"endpoint": " "}],
)
def test_bad_explicit_options_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        resolve_config(**kwargs)  # type: ignore[arg-type]


def test_endpoints_per_protocol() -> None:
    grpc = resolve_config(endpoint="collector:4317", headers={"x-api-key": "k"})
    assert grpc.endpoint == "http://collector:4317"
    assert _exporter_kwargs(grpc, "traces") == {
        "endpoint": "http://collector:4317",
        "headers": {"x-api-key": "k"},
    }
    http = resolve_config(endpoint="https://c.example/", protocol="http/protobuf", insecure=True)
    assert _exporter_kwargs(http, "logs") == {"endpoint": "https://c.example/v1/logs"}
    assert probe_target(http.probe_endpoint) == ("c.example", 443)
