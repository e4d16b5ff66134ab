"""Any OTLP client gets jobs: the bare OTel SDK with only the attribute conventions."""

from __future__ import annotations

import json

from e2e.expectations import check_broken_export, check_import_job
from e2e.harness import ServerProcess


def test_plain_sdk_job_view(server: ServerProcess) -> None:
    ids = json.loads(server.run_app("plain_sdk_jobs").strip().splitlines()[-1])
    check_import_job(server, ids["nightly import"], ids["rebuild index"])
    check_broken_export(server, ids["broken export"])
