"""Jobs pages read recent row groups first and still give exactly the plain query's answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from jobtrail.storage import Database, _log_pages
from jobtrail.storage import queries as q
from jobtrail.storage._sql import utcnow
from jobtrail.storage.schema import fill_search_text, rebuild_log_summaries


@pytest.fixture
def cur(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    db = Database(tmp_path / "db.duckdb")
    con = db.cursor()
    now = utcnow()
    # 1500 jobs over 20 days (denser lately), a few in the future (client clocks) and a few
    # never started; 1 in 50 failed, 1 in 7 of type "rare", names with a searchable word.
    con.execute(
        """INSERT INTO jobs (id, type, name, status, started_at, owner)
           SELECT format('job-{:05d}', i),
                  CASE WHEN i % 7 = 0 THEN 'rare' ELSE 'bulk' END,
                  CASE WHEN i % 97 = 0 THEN 'needle ' || i ELSE 'hay ' || i END,
                  CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'completed' END,
                  CASE WHEN i % 401 = 0 THEN NULL
                       WHEN i % 333 = 0 THEN $now + INTERVAL 10 MINUTE
                       ELSE $now - to_seconds((i * i * 7) % 1728000 / 1.0) END,
                  CASE WHEN i % 2 = 0 THEN 'ann' ELSE 'bob' END
           FROM range(1500) t(i)""",
        {"now": now},
    )
    fill_search_text(con)  # what the writer stores with each row
    yield con
    con.close()
    db.close()


def _plain(cur: duckdb.DuckDBPyConnection, where: str, params: dict[str, object]) -> list[str]:
    return [
        r[0]
        for r in cur.execute(
            f"SELECT id FROM jobs j {where} ORDER BY j.started_at DESC NULLS LAST, j.id DESC",
            params,
        ).fetchall()
    ]


def _paged(cur: duckdb.DuckDBPyConnection, flt: q.JobFilter, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(10_000):
        page = q.list_jobs(cur, flt, limit=limit, cursor=cursor)
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("paging did not end")


@pytest.mark.parametrize(
    ("flt", "where", "params"),
    [
        (q.JobFilter(), "", {}),
        (q.JobFilter(q="needle"), "WHERE j.name ILIKE '%needle%'", {}),
        (q.JobFilter(q="NeEdLe 9"), "WHERE j.name ILIKE '%needle 9%'", {}),
        (q.JobFilter(statuses=("failed",)), "WHERE j.status = 'failed'", {}),
        (q.JobFilter(type="rare", owner="ann"), "WHERE j.type = 'rare' AND j.owner = 'ann'", {}),
        (
            q.JobFilter(since=utcnow() - timedelta(days=3)),
            "WHERE j.started_at >= $since",
            {"since": "since"},
        ),
    ],
    ids=["all", "q", "q-case", "status", "type-owner", "since"],
)
@pytest.mark.parametrize("limit", [9, 100])
def test_pages_equal_the_plain_query(
    cur: duckdb.DuckDBPyConnection, flt: q.JobFilter, where: str, params: dict[str, object], limit: int
) -> None:
    if params:
        params = {"since": flt.since}
    expected = _plain(cur, where, params)
    assert expected
    assert _paged(cur, flt, limit) == expected


@pytest.fixture
def log_cur(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    db = Database(tmp_path / "logs.duckdb")
    con = db.cursor()
    # 3000 records: 1 in 500 fatal (rarer than any window holds a page of), 1 in 3 warn,
    # every 10th a lifecycle record, which pages leave out by default.
    con.execute(
        """INSERT INTO logs (id, time, level, body, event_name, attributes)
           SELECT i, TIMESTAMP '2026-01-01' + to_seconds(i),
                  CASE WHEN i % 500 = 0 THEN 'fatal' WHEN i % 3 = 0 THEN 'warn' ELSE 'info' END,
                  'line ' || i, CASE WHEN i % 10 = 0 THEN 'job.progress' END, '{}'
           FROM range(1, 3001) t(i)"""
    )
    yield con
    con.close()
    db.close()


@pytest.mark.parametrize(
    ("flt", "where"),
    [
        (q.LogFilter(), "event_name IS NULL"),
        (q.LogFilter(levels=("warn",)), "event_name IS NULL AND level = 'warn'"),
        (q.LogFilter(levels=("fatal",), include_events=True), "level = 'fatal'"),
        (q.LogFilter(q="LINE 29"), "event_name IS NULL AND body ILIKE '%line 29%'"),
    ],
    ids=["all", "warn", "fatal", "q"],
)
@pytest.mark.parametrize("before_id", [None, 2500, 40])
@pytest.mark.parametrize("limit", [3, 50])
def test_newest_log_pages_equal_the_plain_query(
    log_cur: duckdb.DuckDBPyConnection,
    flt: q.LogFilter,
    where: str,
    before_id: int | None,
    limit: int,
) -> None:
    bound = "" if before_id is None else f" AND id < {before_id}"
    expected = [
        r[0]
        for r in log_cur.execute(
            f"SELECT id FROM logs WHERE {where}{bound} ORDER BY id DESC LIMIT {limit}"
        ).fetchall()
    ][::-1]
    page = q.list_logs(log_cur, flt, before_id=before_id, limit=limit)
    assert [e["id"] for e in page["logs"]] == expected


@pytest.fixture
def job_log_cur(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    db = Database(tmp_path / "job-logs.duckdb")
    con = db.cursor()
    # Three jobs whose records interleave (ranges overlap, so the job filter matters), one
    # in four warn, every 7th a lifecycle record.
    con.execute(
        "INSERT INTO jobs (id, type, status) SELECT 'job-' || i, 't', 'running' FROM range(3) t(i)"
    )
    con.execute(
        """INSERT INTO logs (id, time, job_id, level, body, event_name, attributes)
           SELECT i, TIMESTAMP '2026-01-01' + to_seconds(i), 'job-' || (i % 3),
                  CASE WHEN i % 4 = 0 THEN 'warn' ELSE 'info' END, 'line ' || i,
                  CASE WHEN i % 7 = 0 THEN 'step.started' END, '{}'
           FROM range(1, 2001) t(i)"""
    )
    rebuild_log_summaries(con)
    yield con
    con.close()
    db.close()


@pytest.mark.parametrize("aggregate_span", [0, 10**9], ids=["order-by-limit", "aggregate"])
@pytest.mark.parametrize(
    ("flt", "where"),
    [
        (q.LogFilter(), "event_name IS NULL"),
        (q.LogFilter(levels=("warn",)), "event_name IS NULL AND level = 'warn'"),
        (q.LogFilter(include_events=True), "true"),
    ],
    ids=["all", "warn", "events"],
)
@pytest.mark.parametrize("after_id", [None, 1000, 1999])
@pytest.mark.parametrize("limit", [1, 40])
def test_job_log_pages_equal_the_plain_query(
    job_log_cur: duckdb.DuckDBPyConnection,
    monkeypatch: pytest.MonkeyPatch,
    aggregate_span: int,
    flt: q.LogFilter,
    where: str,
    after_id: int | None,
    limit: int,
) -> None:
    monkeypatch.setattr(_log_pages, "_AGGREGATE_SPAN", aggregate_span)
    bound = "" if after_id is None else f" AND id > {after_id}"
    expected = [
        r[0]
        for r in job_log_cur.execute(
            f"SELECT id FROM logs WHERE job_id = 'job-1' AND {where}{bound} ORDER BY id LIMIT {limit}"
        ).fetchall()
    ]
    page = q.job_logs(job_log_cur, "job-1", flt, after_id=after_id, limit=limit)
    assert [e["id"] for e in page["logs"]] == expected
    assert page["next_after_id"] == (expected[-1] if expected else after_id)
