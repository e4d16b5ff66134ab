"""The hourly log counts the writer keeps give the same stats as scanning every record."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from otlp_build import log, logs_request

from jobtrail.collector import decode_logs
from jobtrail.storage import Database
from jobtrail.storage.log_counts import count_logs
from jobtrail.storage.schema import rebuild_log_summaries
from jobtrail.storage.writer import BatchWriter

T0 = datetime(2026, 11, 20, 6, 0, 0)
LEVELS = {5: "debug", 9: "info", 13: "warn", 17: "error"}


def _records(rng: random.Random) -> list[object]:
    records = []
    for i in range(600):
        at = T0 + timedelta(seconds=rng.randrange(0, 30 * 3600), microseconds=rng.randrange(10**6))
        attrs: dict[str, object] = {}
        if rng.random() < 0.5:
            attrs["log.category"] = rng.choice(["db", "http", "cache"])
        if i % 10 == 3:
            attrs["event.name"] = "job.progress"  # lifecycle records are not counted
        rec = log(None, None, f"line {i}", attrs, severity=rng.choice(list(LEVELS)))
        rec.time_unix_nano = int(at.replace(tzinfo=UTC).timestamp() * 1e6) * 1000
        records.append(rec)
    return records


def _scan(db: Database, since: datetime | None, until: datetime | None) -> tuple[Counter, Counter]:
    clauses, params = ["event_name IS NULL"], []
    if since is not None:
        clauses.append("time >= ?")
        params.append(since)
    if until is not None:
        clauses.append("time < ?")
        params.append(until)
    rows = db.cursor().execute(
        "SELECT coalesce(level, 'unknown'), coalesce(category, ''), count(*) FROM logs "
        f"WHERE {' AND '.join(clauses)} GROUP BY ALL",
        params,
    ).fetchall()
    levels: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    for level, category, n in rows:
        levels[level] += n
        categories[category] += n
    return levels, categories


async def _ingest(db: Database, records: list[object]) -> None:
    writer = BatchWriter(db)
    writer.start()
    try:
        for i in range(0, len(records), 50):  # several commits, hours shared across them
            await writer.write(decode_logs(logs_request(records[i : i + 50])).batch)  # type: ignore[arg-type]
    finally:
        await asyncio.to_thread(writer.close)


def _bounds(rng: random.Random) -> tuple[datetime | None, datetime | None]:
    def instant() -> datetime:
        t = T0 + timedelta(seconds=rng.randrange(-3600, 32 * 3600))
        return t.replace(minute=0, second=0) if rng.random() < 0.3 else t  # some on the hour

    since = None if rng.random() < 0.2 else instant()
    until = None if rng.random() < 0.2 else instant()
    if since and until and until < since:
        since, until = until, since
    if rng.random() < 0.1 and since is not None:
        until = since + timedelta(minutes=rng.randrange(1, 50))  # inside one or two hours
    return since, until


def test_counts_match_a_full_scan_for_any_range(tmp_path: Path) -> None:
    rng = random.Random(7)
    db = Database(tmp_path / "db.duckdb")
    asyncio.run(_ingest(db, _records(rng)))
    cur = db.cursor()
    assert cur.execute("SELECT count(*) FROM log_counts").fetchone()[0] > 30
    before = cur.execute("SELECT * FROM log_counts ORDER BY ALL").fetchall()
    rebuild_log_summaries(cur)  # the writer's increments equal a recount
    assert cur.execute("SELECT * FROM log_counts ORDER BY ALL").fetchall() == before
    cur.execute(  # records without a timestamp count only in unbounded ranges
        "INSERT INTO logs (id, time, level, body) VALUES (100001, NULL, 'info', 'a'), "
        "(100002, NULL, NULL, 'b')"
    )
    rebuild_log_summaries(cur)
    ranges = [(None, None), (T0, None), (None, T0 + timedelta(hours=3))]
    ranges += [_bounds(rng) for _ in range(200)]
    for since, until in ranges:
        assert count_logs(cur, since, until) == _scan(db, since, until), (since, until)
    db.close()
