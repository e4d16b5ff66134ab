"""A lake whose Parquet files live on object storage (``data_path: s3://bucket/prefix``).

A local S3-compatible server (moto's, on 127.0.0.1 and an ephemeral port) stands in for AWS
or MinIO. Two ``jobtrail serve`` processes share the lake: one is given its endpoint and
credentials in ``exporters.duckdb.lake.s3`` (through ``${env:...}``), the other only the
standard ``AWS_*`` variables, so both ways users configure credentials are exercised. Skipped,
with the reason, when moto or DuckDB's ``httpfs`` extension cannot be had.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from e2e.expectations import check_broken_export, check_import_job
from e2e.harness import ServerProcess
from lakehelp import settle, store
from otlp_build import log, logs_request, new_span_id, new_trace_id, span, traces_request
from pg import PostgresCluster

from jobtrail.config import ConfigError, ServerConfig
from jobtrail.storage import queries
from jobtrail.storage._lake_ext import LakeExtensionError, load_extension, s3_secret_sql
from jobtrail.storage._lake_maintenance import LakeRetention, maintain
from jobtrail.storage._query_model import InvalidParameter
from jobtrail.storage.lake import LakeConfig, S3Settings, open_lake
from jobtrail.storage.sql import run_sql

BUCKET = "jobtrail-lake"
KEY_ID, SECRET, REGION = "test-key-id", "test-secret", "eu-west-1"


def _httpfs_missing() -> str | None:
    con = duckdb.connect(":memory:")
    try:
        load_extension(con, "httpfs")
    except LakeExtensionError as exc:
        return str(exc)
    finally:
        con.close()
    return None


class S3Server:
    """moto's S3 server in this process, and a boto3 client of it."""

    def __init__(self) -> None:
        server = pytest.importorskip(
            "moto.server", reason="moto[server] not installed (the test extra has it)"
        )
        import boto3

        self.server = server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.client = boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
        )  # fmt: skip
        self.client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    reason = _httpfs_missing()
    if reason:
        pytest.skip(f"DuckDB httpfs extension unavailable: {reason}")
    server = S3Server()
    try:
        yield server
    finally:
        server.server.stop()


def lake_yaml(catalog: str, data_path: str, s3: dict[str, Any] | None) -> str:
    lake: dict[str, Any] = {
        "catalog": catalog, "data_path": data_path, "commit_interval": "100ms",
        "data_inlining_row_limit": 0,  # every commit a Parquet file, to find in the bucket
    }  # fmt: skip
    if s3:
        lake["s3"] = s3
    return json.dumps({"exporters": {"duckdb": {"lake": lake}}})  # JSON is YAML


def post_sql(server: ServerProcess, sql: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{server.api}/api/sql", data=json.dumps({"sql": sql}).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def collectors(
    s3: S3Server, postgres: PostgresCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """``a`` configured through ``lake.s3`` (``${env:...}``), ``b`` through ``AWS_*`` only."""
    catalog, data_path = postgres.catalog(), f"s3://{BUCKET}/lake"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
                 "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JOBTRAIL_TEST_S3_SECRET", SECRET)
    from_config = {
        "endpoint": s3.endpoint, "region": REGION, "key_id": KEY_ID,
        "secret": "${env:JOBTRAIL_TEST_S3_SECRET}",
    }  # fmt: skip
    servers = []
    for name, section in (("a", from_config), ("b", None)):
        (tmp_path / name).mkdir()
        server = ServerProcess(tmp_path / name, lake_yaml(catalog, data_path, section))
        with monkeypatch.context() as env:
            if section is None:  # what `aws configure` users and MinIO docs set
                env.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
                env.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
                env.setenv("AWS_REGION", REGION)
                env.setenv("AWS_ENDPOINT_URL", s3.endpoint)
            server.start()  # one after the other: the concurrent start is test_two_collectors'
        servers.append(server)
    try:
        yield servers[0], servers[1]
    finally:
        for server in servers:
            if server.proc is not None:
                assert server.stop() == 0


def test_jobs_on_an_s3_lake_are_complete_and_stored_in_the_bucket(
    s3: S3Server, collectors: tuple[ServerProcess, ServerProcess], tmp_path: Path
) -> None:
    a, b = collectors
    env = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://{a.grpc}",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": f"http://{b.grpc}",
    }  # spans to a, log records to b: both read and write the bucket
    ids = json.loads(a.run_app("plain_sdk_jobs", env=env).strip().splitlines()[-1])
    for server in (a, b):
        server.wait_for(
            f"/api/jobs/{ids['nightly import']}/logs", lambda body: len(body["logs"]) >= 203,
            timeout_s=20, limit=10000,
        )  # fmt: skip
        check_import_job(server, ids["nightly import"], ids["rebuild index"])
        check_broken_export(server, ids["broken export"])
        assert server.get("/api/stats")["jobs"]["by_status"] == {"completed": 2, "failed": 1}

    keys = s3.keys("lake/")
    parquet = [k for k in keys if k.endswith(".parquet")]
    assert parquet, f"no Parquet objects under s3://{BUCKET}/lake/: {keys}"
    assert {k.split("/")[2] for k in parquet} >= {"spans", "log_records"}, parquet
    assert not list(tmp_path.rglob("*.parquet")), "nothing written to local disk"

    # User SQL sees the lake's tables, but neither other objects nor the secret.
    status, body = post_sql(a, "SELECT count(*) AS n FROM jobs")
    assert status == 200 and body["rows"] == [[3]], body
    for sql in (
        f"SELECT * FROM read_parquet('s3://{BUCKET}/elsewhere/x.parquet')",
        f"SELECT * FROM 's3://{BUCKET}/{parquet[0]}'",
        "SELECT * FROM duckdb_secrets()",
    ):
        status, body = post_sql(a, sql)
        assert status == 400 and body["error"]["code"] == "invalid_sql", (sql, body)


async def test_the_instance_reaches_only_its_prefix_and_upkeep_tidies_the_bucket(
    s3: S3Server, postgres: PostgresCluster
) -> None:
    """Below the SQL check: no access outside the data path; compaction deletes objects."""
    s3.client.put_object(Bucket=BUCKET, Key="outside/x.csv", Body=b"a\n1\n")
    settings = S3Settings(endpoint=s3.endpoint, region=REGION, key_id=KEY_ID, secret=SECRET)
    lake = LakeConfig(
        catalog=postgres.catalog(), data_path=f"s3://{BUCKET}/own", s3=settings,
        commit_interval_s=0.01, data_inlining_row_limit=0,
    )  # fmt: skip
    side = open_lake(lake, lost_after_s=60)
    side.writer.start()
    try:
        cur = side.db.cursor()
        with pytest.raises(duckdb.PermissionException):
            cur.execute(f"SELECT * FROM read_csv('s3://{BUCKET}/outside/x.csv')").fetchall()
        with pytest.raises(duckdb.Error, match="lock"):
            cur.execute("SET enable_external_access = true")
        secret = cur.execute("SELECT secret_string FROM duckdb_secrets()").fetchone()
        assert secret is not None and SECRET not in secret[0], "DuckDB redacts it"
        with pytest.raises(InvalidParameter, match="is not allowed"):
            run_sql(cur, "SELECT * FROM duckdb_secrets()", limit=10, timeout_s=10)

        trace, job = new_trace_id(), new_span_id()
        await store(
            side.writer, ("traces", traces_request([span(trace, job, "s3 job", {"job.type": "t"})]))
        )
        for i in range(6):  # small commits: files to merge, then to delete
            await store(side.writer, ("logs", logs_request([log(trace, job, f"line {i}")])))
        await settle(side)
        objects = [k for k in s3.keys("own/") if k.endswith(".parquet")]
        report = maintain(side.db, LakeRetention(snapshot_keep_s=0), ages=False)
        assert {"merge", "expire", "cleanup"} <= set(report.done), report.skipped
        left = [k for k in s3.keys("own/") if k.endswith(".parquet")]
        assert len(left) < len(objects), "merged files' objects deleted from the bucket"
        logs = queries.list_logs(cur, limit=100)["logs"]
        assert [e["message"] for e in logs] == [f"line {i}" for i in range(6)]
    finally:
        side.writer.close()
        side.db.close()


# --- the secret and the configuration, without a server ---


def test_secret_from_settings_with_an_http_endpoint() -> None:
    sql = s3_secret_sql(
        S3Settings(endpoint="http://minio:9000/", key_id="k", secret="it's"), "s3://b/p/", {}
    )
    assert sql == (
        "CREATE SECRET jobtrail_lake (TYPE s3, KEY_ID 'k', SECRET 'it''s', "
        "ENDPOINT 'minio:9000', URL_STYLE 'path', SCOPE 's3://b/p/', USE_SSL false)"
    )


def test_secret_from_the_aws_variables_and_aws_defaults() -> None:
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t",
           "AWS_DEFAULT_REGION": "eu-north-1"}  # fmt: skip
    assert s3_secret_sql(S3Settings(), "s3://b/", env) == (
        "CREATE SECRET jobtrail_lake (TYPE s3, KEY_ID 'k', SECRET 's', SESSION_TOKEN 't', "
        "REGION 'eu-north-1', SCOPE 's3://b/')"
    )  # no endpoint: AWS, virtual-hosted URLs, TLS (DuckDB's defaults)
    # Keys in the settings are never mixed with a session token of the environment's.
    mixed = s3_secret_sql(S3Settings(key_id="k2", secret="s2"), "s3://b/", env)
    assert "SESSION_TOKEN" not in mixed and "'k2'" in mixed
    assert s3_secret_sql(S3Settings(), "s3://b/", {}) == (
        "CREATE SECRET jobtrail_lake (TYPE s3, SCOPE 's3://b/')"
    )  # unsigned: a public bucket
    with pytest.raises(ValueError, match="key_id and secret go together"):
        s3_secret_sql(S3Settings(key_id="k"), "s3://b/", {})


def test_settings_hide_the_secret_and_check_url_style() -> None:
    assert "hush" not in repr(S3Settings(key_id="k", secret="hush", session_token="hush"))
    with pytest.raises(ValueError, match="url_style"):
        S3Settings(url_style="virtual")
    with pytest.raises(ValueError, match="only for a data_path on s3://"):
        LakeConfig(catalog="postgres:dbname=x", data_path="/srv/lake", s3=S3Settings())


def test_config_keys() -> None:
    def lake(data_path: str, s3: dict[str, Any]) -> dict[str, Any]:
        section = {"catalog": "postgres:dbname=x", "data_path": data_path, "s3": s3}
        return {"exporters": {"duckdb": {"lake": section}}}

    cfg = ServerConfig.from_mapping(
        lake("s3://b/p", {"endpoint": "minio:9000", "use_ssl": False, "url_style": "path",
                          "region": "r", "key_id": "k", "secret": "hush"})
    )  # fmt: skip
    assert (cfg.lake_s3_endpoint, cfg.lake_s3_use_ssl, cfg.lake_s3_secret) == (
        "minio:9000", False, "hush",
    )  # fmt: skip
    assert "hush" not in repr(cfg)
    with pytest.raises(ConfigError, match=r"lake\.s3: only for a data_path on s3://"):
        ServerConfig.from_mapping(lake("/srv/lake", {"region": "r"}))
    with pytest.raises(ConfigError, match=r"lake\.s3\.url_style: expected path or vhost"):
        ServerConfig.from_mapping(lake("s3://b/p", {"url_style": "virtual"}))
    with pytest.raises(ConfigError, match=r"lake\.s3\.use_ssl: expected bool"):
        ServerConfig.from_mapping(lake("s3://b/p", {"use_ssl": "no"}))
    with pytest.raises(ConfigError, match=r"lake\.s3\.bucket: unknown key"):
        ServerConfig.from_mapping(lake("s3://b/p", {"bucket": "b"}))
