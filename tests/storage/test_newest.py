"""Jobs pages read recent row groups first and still give exactly the plain query's answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from jobtrail.storage import Database
from jobtrail.storage import queries as q
from jobtrail.storage._sql import utcnow


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
