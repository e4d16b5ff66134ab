"""Any OTLP client gets jobs: the bare OTel SDK with only the attribute conventions."""

from __future__ import annotations

import json

import pytest

from e2e.expectations import check_broken_export, check_import_job
from e2e.harness import ServerProcess
from e2e.otlp_json_job import build, post


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_plain_sdk_job_view(server: ServerProcess, protocol: str, compression: str) -> None:
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
    if compression != "none":
        env["OTEL_EXPORTER_OTLP_COMPRESSION"] = compression
    ids = json.loads(server.run_app("plain_sdk_jobs", env=env).strip().splitlines()[-1])
    check_import_job(server, ids["nightly import"], ids["rebuild index"])
    check_broken_export(server, ids["broken export"])


@pytest.mark.parametrize("compress", [False, True], ids=["json", "json-gzip"])
def test_hand_written_otlp_json_job_view(server: ServerProcess, compress: bool) -> None:
    jobs, ids = build()
    post(server.http, "e2e-json", jobs, compress=compress)
    check_import_job(server, ids["nightly import"], ids["rebuild index"])
    check_broken_export(server, ids["broken export"])
