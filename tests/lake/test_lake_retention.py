"""Retention on a lake as on the file: compact_interval, the log cap, max_size refused, prune."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from lakehelp import settle, store
from otlp_build import log, logs_request, new_span_id, new_trace_id, span, traces_request
from pg import PostgresCluster

from jobtrail.cli import main
from jobtrail.config import ConfigError, ServerConfig
from jobtrail.storage import _lake_schema, _lake_tasks, queries
from jobtrail.storage._lake_ext import load_extension
from jobtrail.storage._lake_maintenance import LakeRetention, maintain
from jobtrail.storage._lake_retention import cap_logs_on_lake
from jobtrail.storage._lake_schema import lake_version, migrate_lake
from jobtrail.storage._lake_tasks import LakeTasks, UpkeepSchedule
from jobtrail.storage.lake import LakeConfig, LakeStorage, _attach, open_lake

DAY_NS = 86_400 * 10**9
MAX_SIZE_REFUSED = "exporters.duckdb.retention.max_size: not supported with exporters.duckdb.lake"


def lake_yaml(catalog: str, data_path: str, retention: str = "", lake: str = "") -> str:
    return (
        "exporters:\n  duckdb:\n"
        f"    lake: {{catalog: '{catalog}', data_path: '{data_path}'{lake}}}\n"
        + (f"    retention: {{{retention}}}\n" if retention else "")
    )


def messages(cur: duckdb.DuckDBPyConnection, job_id: str) -> list[str]:
    """A job's log messages in id order (the API leaves lifecycle records out)."""
    return [r["message"] for r in queries.job_logs(cur, job_id, limit=10_000)["logs"]]


def lifecycle(cur: duckdb.DuckDBPyConnection, job_id: str) -> int:
    sql = "SELECT count(*) FROM logs WHERE job_id = ? AND event_name IS NOT NULL"
    return int(cur.execute(sql, [job_id]).fetchone()[0])  # type: ignore[index]


# --- exporters.duckdb.lake.compact_interval -------------------------------------------------


def test_compact_interval_is_read_and_reaches_the_lake_retention() -> None:
    cfg = ServerConfig.from_mapping(
        {"exporters": {"duckdb": {
            "lake": {"catalog": "postgres:dbname=j", "data_path": "/x", "compact_interval": "10m"},
            "retention": {"max_age": "7d", "max_logs_per_job": 100, "interval": "30m"},
        }}}
    )  # fmt: skip
    assert cfg.lake_compact_interval_s == 600.0
    retention = cfg.lake_retention()
    assert (retention.compact_interval_s, retention.interval_s) == (600.0, 1800.0)
    assert (retention.max_age_s, retention.max_logs_per_job) == (7 * 86_400.0, 100)
    assert ServerConfig().lake_retention().compact_interval_s == 300.0, "5 minutes by default"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("soon", "exporters.duckdb.lake.compact_interval: expected a duration"),
        ("500ms", "exporters.duckdb.lake.compact_interval: must be at least 1s"),
        (5, "exporters.duckdb.lake.compact_interval: expected a string"),
    ],
)
def test_compact_interval_errors_name_the_key(value: object, words: str) -> None:
    lake = {"catalog": "postgres:dbname=j", "data_path": "/x", "compact_interval": value}
    with pytest.raises(ConfigError, match=words):
        ServerConfig.from_mapping({"exporters": {"duckdb": {"lake": lake}}})


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"compact_interval_s": 0}, "lake retention compact_interval_s: must be positive"),
        ({"interval_s": -1}, "lake retention interval_s: must be positive"),
        ({"max_logs_per_job": 1}, "lake retention max_logs_per_job: must be at least 2"),
        ({"snapshot_keep_s": -1}, "lake retention snapshot_keep_s: must be >= 0"),
    ],
)
def test_lake_retention_checks_its_arguments(kwargs: dict[str, float], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        LakeRetention(**kwargs)  # type: ignore[arg-type]


def test_schedule_runs_compaction_every_compact_interval() -> None:
    """Compaction every compact_interval and retention every interval, independently."""
    schedule = UpkeepSchedule(LakeRetention(compact_interval_s=60, interval_s=3600))
    assert schedule.wake_every_s == 60
    assert schedule.start(1000.0) == {"ages": True, "compact": True}, "both on the first pass"
    assert schedule.start(1030.0) == {"ages": False, "compact": False}
    assert schedule.start(1060.0) == {"ages": False, "compact": True}
    assert schedule.start(1100.0) == {"ages": False, "compact": False}
    assert schedule.start(4600.0) == {"ages": True, "compact": True}
    short = UpkeepSchedule(LakeRetention(compact_interval_s=600, interval_s=120))
    assert short.wake_every_s == 120
    short.start(0.0)
    assert short.start(120.0) == {"ages": True, "compact": False}


def test_maintain_does_the_steps_it_is_asked_for(two: tuple[LakeStorage, LakeStorage]) -> None:
    a = two[0]
    retention = LakeRetention(max_logs_per_job=10)
    assert maintain(a.db, retention, ages=False, compact=False).done == []
    report = maintain(a.db, retention, ages=False)
    assert report.done == ["flush", "rewrite", "merge", "expire", "cleanup"], report.skipped
    assert maintain(a.db, retention, compact=False).done == ["age", "cap"]


async def test_collector_tasks_run_upkeep_every_compact_interval(
    two: tuple[LakeStorage, LakeStorage], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A collector's maintenance loop wakes every compact_interval (here 1 s, not 5 minutes)."""
    a = two[0]
    passes: list[list[str]] = []
    real = _lake_tasks.maintain

    def counted(*args: Any, **kwargs: Any) -> Any:
        report = real(*args, **kwargs)
        passes.append(report.done)
        return report

    monkeypatch.setattr(_lake_tasks, "maintain", counted)
    retention = LakeRetention(compact_interval_s=1, interval_s=3600)
    tasks = LakeTasks(a.db, a.writer, lost_after_s=60, retention=retention)
    runner = asyncio.create_task(tasks.run(lambda info: None, lambda ids: None))
    for _ in range(200):  # bounded: about 10 s
        if len(passes) >= 2:
            break
        await asyncio.sleep(0.05)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert len(passes) >= 2
    assert "age" in passes[0] and "merge" in passes[0], passes
    assert all("merge" in done and "age" not in done for done in passes[1:]), passes


# --- max_size: refused on a lake ----------------------------------------------------------------


def test_max_size_on_a_lake_is_refused_when_the_config_is_read() -> None:
    with pytest.raises(ConfigError, match=MAX_SIZE_REFUSED):
        ServerConfig.from_mapping(
            {"exporters": {"duckdb": {
                "lake": {"catalog": "postgres:dbname=j", "data_path": "/x"},
                "retention": {"max_size": "10GiB"},
            }}}
        )  # fmt: skip
    file_only = ServerConfig.from_mapping(
        {"exporters": {"duckdb": {"retention": {"max_size": "10GiB"}}}}
    )
    assert file_only.retention_max_size_bytes == 10 * 1024**3, "the file keeps its size cap"
    with pytest.raises(ConfigError, match=MAX_SIZE_REFUSED):
        file_only.with_overrides(lake_catalog="postgres:dbname=j", lake_data_path="/x")


def test_serve_and_prune_refuse_max_size_on_a_lake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sized = tmp_path / "sized.yaml"
    sized.write_text("exporters:\n  duckdb:\n    retention: {max_size: 1GiB}\n")
    lake_flags = ["--lake-catalog", "postgres:dbname=j", "--lake-data-path", str(tmp_path)]
    assert main(["serve", "--config", str(sized), *lake_flags]) == 2
    assert MAX_SIZE_REFUSED in capsys.readouterr().err
    both = tmp_path / "both.yaml"
    both.write_text(lake_yaml("postgres:dbname=j", str(tmp_path), "max_size: 1GiB"))
    assert main(["prune", "--config", str(both)]) == 2
    assert MAX_SIZE_REFUSED in capsys.readouterr().err


# --- max_logs_per_job on a lake ---------------------------------------------------------------


async def test_log_cap_keeps_first_and_last_records_across_collectors(
    two: tuple[LakeStorage, LakeStorage],
) -> None:
    a, b = two
    t, s = new_trace_id(), new_span_id()
    qt, qs = new_trace_id(), new_span_id()
    await store(a.writer, ("traces", traces_request([
        span(t, s, "flood", {"job.type": "flood"}), span(qt, qs, "quiet", {"job.type": "quiet"}),
    ])))  # fmt: skip
    progress = {"event.name": "job.progress", "job.id": s.hex(), "job.type": "flood"}
    for i in range(2):  # on both collectors: b's records are linked by the sweep
        records = [log(t, s, f"flood {i}.{k:02}") for k in range(10)]
        records += [log(qt, qs, f"quiet {i}.{k}") for k in range(2)]
        await store(two[i % 2].writer, ("logs", logs_request(records)))
    await store(
        b.writer, ("logs", logs_request([log(t, s, "50%", {**progress, "job.progress": 50})]))
    )
    await settle(a, b)
    cur = a.db.cursor()
    flood = messages(cur, s.hex())
    assert len(flood) == 20 and lifecycle(cur, s.hex()) == 1

    dry = cap_logs_on_lake(cur, "lake", 6, dry_run=True)
    assert messages(cur, s.hex()) == flood, "a dry run changes nothing"
    done = cap_logs_on_lake(cur, "lake", 6)
    assert done == dry and done.logs >= 14, "the dry run counted what the pass dropped"
    for side in (a, b):
        view = side.db.cursor()
        assert messages(view, s.hex()) == flood[:3] + flood[-3:]
        assert queries.get_job(view, s.hex())["logs_dropped"] == 14
        assert queries.get_job(view, qs.hex())["logs_dropped"] == 0
        assert len(messages(view, qs.hex())) == 4
    assert lifecycle(cur, s.hex()) == 1, "lifecycle records are not counted or dropped"
    job = queries.get_job(cur, s.hex())
    assert (job["status"], job["type"]) == ("completed", "flood"), "the fact changes no field"

    assert cap_logs_on_lake(cur, "lake", 6).logs == 0
    assert queries.get_job(cur, s.hex())["logs_dropped"] == 14, "a second pass drops nothing"
    await store(b.writer, ("logs", logs_request([log(t, s, f"late {k}") for k in range(4)])))
    await settle(a, b)
    cap_logs_on_lake(cur, "lake", 6)
    assert messages(cur, s.hex()) == [*flood[:3], "late 1", "late 2", "late 3"]
    assert queries.get_job(cur, s.hex())["logs_dropped"] == 18


# --- jobtrail prune on a lake -------------------------------------------------------------------


@pytest.fixture
def own_lake(postgres: PostgresCluster, tmp_path: Path) -> LakeStorage:
    lake = LakeConfig(catalog=postgres.catalog(), data_path=str(tmp_path / "lake"))
    storage = open_lake(lake, lost_after_s=60)
    storage.writer.start()
    yield storage  # type: ignore[misc]
    storage.writer.close()
    storage.db.close()


async def test_prune_works_on_a_lake_config(
    own_lake: LakeStorage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = own_lake.db.lake
    old_t, old = new_trace_id(), new_span_id()
    new_t, new = new_trace_id(), new_span_id()
    await store(own_lake.writer, ("traces", traces_request([
        span(old_t, old, "old", {"job.type": "old"}, start_ns=time.time_ns() - 10 * DAY_NS),
        span(new_t, new, "new", {"job.type": "new"}),
    ])))  # fmt: skip
    await store(own_lake.writer, ("logs", logs_request(
        [log(old_t, old, f"old {k}") for k in range(2)]
        + [log(new_t, new, f"new {k}") for k in range(10)]
    )))  # fmt: skip
    config = tmp_path / "lake.yaml"
    config.write_text(lake_yaml(lake.catalog, lake.data_path, "max_age: 1d, max_logs_per_job: 4"))
    cur = own_lake.db.cursor()

    code = await asyncio.to_thread(main, ["prune", "--config", str(config), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "(dry run: nothing changed)" in out and "would remove: 1 finished jobs" in out
    assert "logs over the cap: 6 of 1 jobs" in out and "upkeep" not in out
    assert queries.get_job(cur, old.hex()) and len(messages(cur, new.hex())) == 10

    code = await asyncio.to_thread(main, ["prune", "--config", str(config)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "removed: 1 finished jobs" in out and "log_records 2" in out
    assert "logs over the cap: 6 of 1 jobs" in out
    assert "upkeep: flush, rewrite, merge, expire, cleanup" in out
    with pytest.raises(queries.JobNotFound):
        queries.get_job(cur, old.hex())
    assert messages(cur, new.hex()) == ["new 0", "new 1", "new 8", "new 9"]
    assert queries.get_job(cur, new.hex())["logs_dropped"] == 6


def test_a_lake_of_the_previous_layout_gains_log_caps(
    postgres: PostgresCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lake written before the log cap (layout 1) is brought up to date on open."""
    config = LakeConfig(catalog=postgres.catalog(), data_path=str(tmp_path / "lake"))
    con = duckdb.connect()
    try:
        for name in ("ducklake", "postgres"):
            load_extension(con, name)
        _attach(con, config)
        with monkeypatch.context() as patch:
            patch.setattr(_lake_schema, "LAKE_SCHEMA_VERSION", 1)
            assert migrate_lake(con, config.name) == 1
        assert lake_version(con, config.name) == 1
    finally:
        con.close()
    storage = open_lake(config, lost_after_s=60)
    try:
        cur = storage.db.cursor()
        assert lake_version(cur, config.name) == _lake_schema.LAKE_SCHEMA_VERSION
        assert cur.execute(
            "SELECT count(*) FROM lake.log_caps WHERE job_id IS NOT NULL"
        ).fetchone() == (0,)
        assert cap_logs_on_lake(cur, config.name, 2).logs == 0
        # ... and every later layout: the queue times (layout 4) behind jobs.queued_at.
        assert cur.execute(
            "SELECT count(*) FROM lake.job_queue WHERE id IS NOT NULL"
        ).fetchone() == (0,)
        assert cur.execute("SELECT count(queued_at) FROM jobs").fetchone() == (0,)
    finally:
        storage.db.close()
