"""Setting a lake up (config, CLI, extensions) and what a collector does when the catalog is down."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from lakehelp import store
from otlp_build import log, logs_request, new_trace_id
from pg import PostgresCluster, unavailable_reason

from jobtrail.cli import main
from jobtrail.config import ConfigError, ServerConfig
from jobtrail.storage import queries
from jobtrail.storage._lake_ext import LakeExtensionError, load_extension
from jobtrail.storage.lake import LakeConfig, open_lake
from jobtrail.storage.writer import WriterOverloaded


def lake_section(**lake: object) -> dict[str, object]:
    return {"exporters": {"duckdb": {"lake": lake}}}


def test_config_reads_the_lake_section() -> None:
    cfg = ServerConfig.from_mapping(
        lake_section(
            catalog="postgres:dbname=j host=db",
            data_path="s3://b/p",
            commit_interval="2s",
            data_inlining_row_limit=100,
        )  # fmt: skip
    )
    assert (cfg.lake_catalog, cfg.lake_data_path) == ("postgres:dbname=j host=db", "s3://b/p")
    assert cfg.lake_commit_interval_s == 2.0 and cfg.lake_data_inlining_row_limit == 100
    assert ServerConfig.from_mapping({}).lake_catalog is None, "the file stays the default"


@pytest.mark.parametrize(
    ("lake", "words"),
    [
        ({"catalog": "postgres:dbname=j", "data_path": "/x", "catlog": "y"},
         "exporters.duckdb.lake.catlog: unknown key"),
        ({"catalog": "postgres:dbname=j"}, "exporters.duckdb.lake.data_path: required"),
        ({"catalog": "dbname=j", "data_path": "/x"}, "expected postgres:<connection string>"),
        ({"catalog": "postgres:x", "data_path": "/x", "commit_interval": "soon"},
         "exporters.duckdb.lake.commit_interval: expected a duration"),
        ({"catalog": "postgres:x", "data_path": "/x", "data_inlining_row_limit": -1},
         "data_inlining_row_limit: must be >= 0"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(lake: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        ServerConfig.from_mapping(lake_section(**lake))


def test_cli_needs_both_lake_flags(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["serve", "--config", str(_empty(tmp_path)), "--lake-catalog", "postgres:x"])
    assert code == 2
    assert "needs both --lake-catalog and --lake-data-path" in capsys.readouterr().err


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.yaml"
    path.write_text("{}\n")
    return path


def test_missing_extension_says_how_to_get_it() -> None:
    con = duckdb.connect(config={"autoload_known_extensions": False})
    with pytest.raises(LakeExtensionError, match=r"run `INSTALL no_such_ext;` once"):
        load_extension(con, "no_such_ext")


@pytest.mark.skipif(bool(unavailable_reason()), reason=str(unavailable_reason()))
def test_serve_on_an_unreachable_catalog_exits_with_a_message(tmp_path: Path) -> None:
    catalog = f"postgres:dbname=nope host={tmp_path} port=1 user=nobody"
    done = subprocess.run(
        [sys.executable, "-m", "jobtrail", "serve", "--config", str(_empty(tmp_path)),
         "--lake-catalog", catalog, "--lake-data-path", str(tmp_path / "lake"),
         "--grpc-port", "0", "--http-port", "0", "--api-port", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "cannot open database" in done.stderr and "Unable to connect to Postgres" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(bool(unavailable_reason()), reason=str(unavailable_reason()))
async def test_catalog_down_means_retry_later_and_nothing_lost(tmp_path: Path) -> None:
    """Its own cluster, stopped and started again under a running collector."""
    cluster = PostgresCluster()
    cluster.start()
    try:
        lake = open_lake(
            LakeConfig(
                catalog=cluster.catalog(), data_path=str(tmp_path / "lake"), commit_interval_s=0.0
            ),  # fmt: skip
            lost_after_s=60,
        )
        lake.writer.start()
        t = new_trace_id()
        await store(lake.writer, ("logs", logs_request([log(t, None, "before")])))
        cluster.stop_server()
        with pytest.raises(WriterOverloaded, match="lake unavailable"):
            await store(lake.writer, ("logs", logs_request([log(t, None, "during")])))
        cluster.start_server()
        await store(lake.writer, ("logs", logs_request([log(t, None, "after")])))
        cur = lake.db.cursor()
        messages = [e["message"] for e in queries.list_logs(cur)["logs"]]
        assert messages == ["before", "after"]
        lake.writer.close()
        lake.db.close()
    finally:
        cluster.stop()


def test_unknown_catalog_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="expected postgres:"):
        LakeConfig(catalog="sqlite:x.db", data_path="/x")


def test_duckdb_settings_reach_the_lake(lake_config: LakeConfig) -> None:
    """``exporters.duckdb.threads`` and ``memory_limit`` configure the lake's DuckDB too."""
    lake = open_lake(lake_config, lost_after_s=60, threads=1, memory_limit_bytes=300 << 20)
    try:
        cur = lake.db.cursor()
        assert cur.execute("SELECT current_setting('threads')").fetchone() == (1,)
        limit = cur.execute("SELECT current_setting('memory_limit')").fetchone()
        assert limit is not None and limit[0].startswith("300")
    finally:
        lake.db.close()
