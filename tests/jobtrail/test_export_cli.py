"""``jobtrail export``: Parquet by day, CSV, JSON lines; from a file or through a server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from e2e.harness import ServerProcess
from sample_jobs import fill_db

from jobtrail import _export_cli, cli
from jobtrail.storage import Database
from jobtrail.storage._sql import utcnow
from jobtrail.storage.export import TABLES

ORDER = {t.name: ", ".join(name for name, _ in t.keys) for t in TABLES}


@pytest.fixture
def db_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(_export_cli, "_PAGE_ROWS", 7)  # several pages per table
    path = tmp_path / "src" / "jobtrail.duckdb"
    path.parent.mkdir()
    db = Database(path)
    fill_db(db)
    db.close()
    return path


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[object, ...]]:
    return con.execute(sql).fetchall()


def test_parquet_round_trip_partitioned_by_day(db_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli.main(["export", "--db", str(db_file), "--to", str(out)]) == 0
    assert (out / "logs").is_dir() and any((out / "logs").glob("day=*/*.parquet"))
    con = duckdb.connect(str(db_file), read_only=True)
    for table, keys in ORDER.items():
        exported = _rows(
            con,
            f"SELECT * EXCLUDE (day) FROM read_parquet('{out / table}/**/*.parquet', "
            f"hive_partitioning = true) ORDER BY {keys}",
        )
        stored = _rows(con, f"SELECT * FROM {table} ORDER BY {keys}")
        assert exported == stored, table
        assert stored, table
    days = _rows(con, f"SELECT DISTINCT day FROM read_parquet('{out}/logs/**/*.parquet')")
    assert days
    con.close()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_csv_and_jsonl_have_every_row(db_file: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out"
    assert cli.main(["export", "--db", str(db_file), "--to", str(out), "--format", fmt]) == 0
    con = duckdb.connect(str(db_file), read_only=True)
    for table in ORDER:
        text = (out / f"{table}.{fmt}").read_text()
        if fmt == "jsonl":
            ids = [json.loads(line).get("id", json.loads(line).get("span_id")) for line in text.splitlines()]
        else:
            lines = text.splitlines()
            header = lines[0].split(",")
            ids = [line for line in lines[1:]]
            assert "id" in header or "span_id" in header
        stored = _rows(con, f"SELECT count(*) FROM {table}")[0][0]
        assert len(ids) >= stored  # csv fields may hold newlines (stack traces)
        if fmt == "jsonl":
            assert len(ids) == stored
    con.close()


def test_the_window_cuts_each_table_by_its_time(db_file: Path, tmp_path: Path) -> None:
    con = duckdb.connect(str(db_file), read_only=True)
    since, until = con.execute("SELECT quantile_disc(time, 0.3), max(time) FROM logs").fetchone()
    con.close()
    out = tmp_path / "out"
    args = ["export", "--db", str(db_file), "--to", str(out), "--format", "jsonl",
            "--since", since.isoformat() + "Z", "--until", until.isoformat() + "Z"]  # fmt: skip
    assert cli.main(args) == 0
    con = duckdb.connect(str(db_file), read_only=True)
    expected = _rows(con, f"SELECT id FROM logs WHERE time >= '{since}' AND time < '{until}' ORDER BY id")
    got = [(json.loads(line)["id"],) for line in (out / "logs.jsonl").read_text().splitlines()]
    assert got == expected and 0 < len(got) < _rows(con, "SELECT count(*) FROM logs")[0][0]
    con.close()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--since", "yesterday"], "--since: expected RFC 3339"),
        (["--format", "xml"], "--format: expected one of parquet, csv, jsonl"),
        (["--since", "2026-11-02", "--until", "2026-11-01"], "--until must be later"),
    ],
)
def test_bad_arguments_are_named(
    db_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert cli.main(["export", "--db", str(db_file), "--to", str(tmp_path / "o"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_or_busy_file_is_explained(
    db_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["export", "--db", str(tmp_path / "nope.duckdb"), "--to", str(tmp_path / "o")]) == 2
    assert "no such database file" in capsys.readouterr().err
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({str(db_file)!r}); print('open', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        assert cli.main(["export", "--db", str(db_file), "--to", str(tmp_path / "o")]) == 2
        assert "in use by a running server" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.e2e
def test_through_a_running_server_equals_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_export_cli, "_PAGE_ROWS", 5)
    server = ServerProcess(tmp_path)
    db = Database(server.db)
    fill_db(db, now=utcnow() - timedelta(minutes=5))
    db.close()
    server.start()
    try:
        t0 = time.monotonic()
        assert cli.main(["export", "--api", server.api, "--to", str(tmp_path / "api")]) == 0
        assert time.monotonic() - t0 < 60
    finally:
        assert server.stop() == 0
    assert cli.main(["export", "--db", str(server.db), "--to", str(tmp_path / "file")]) == 0
    con = duckdb.connect()
    for table, keys in ORDER.items():
        q = "SELECT * FROM read_parquet('{}/**/*.parquet', hive_partitioning = true) ORDER BY " + keys
        assert con.execute(q.format(tmp_path / "api" / table)).fetchall() == con.execute(
            q.format(tmp_path / "file" / table)
        ).fetchall(), table
