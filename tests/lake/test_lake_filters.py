"""The ``span_id`` log filter and the stats job filters on a lake: the embedded file's answers.

The requests of ``step_runs`` (a step run twice, one record linked through the span tree, a
failed job of another owner and service) go to two collectors in turn; the reference is the
embedded file fed the same requests through the embedded writer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lakehelp import settle
from step_runs import StepRuns, step_runs, store, store_all

from jobtrail.storage import Database, queries
from jobtrail.storage.lake import LakeStorage


def _rows(page: list[Any]) -> list[tuple[Any, ...]]:
    return sorted((e["message"], e["level"], e["step"], e["step_span_id"], e["span_id"])
                  for e in page)  # fmt: skip


def answers(cur: Any, runs: StepRuns, now: datetime) -> dict[Any, Any]:
    """Steps, every span's records (one job's and all), and stats for each job filter."""
    steps = queries.get_job(cur, runs.job_id)["steps"]
    out: dict[Any, Any] = {"steps": [(s["seq"], s["name"], s["span_id"]) for s in steps]}
    for span_id in (runs.run1, runs.run2, runs.http, runs.job_span):
        flt = queries.LogFilter(span_id=span_id)
        out["job", span_id] = _rows(queries.job_logs(cur, runs.job_id, flt)["logs"])
        out["all", span_id] = _rows(queries.list_logs(cur, flt)["logs"])
    for params in (
        {"type": runs.type},
        {"owner": runs.owner},
        {"owner": runs.other_owner},
        {"service": runs.service},
        {"service": runs.other_service},
        {"type": runs.type, "owner": runs.owner, "service": runs.service},
    ):
        window = queries.StatsFilter(**params, since=now - timedelta(days=1), until=now)
        out["stats", *params.values()] = queries.get_stats(cur, window, now=now)
    return out


async def test_span_id_and_stats_filters_give_the_embedded_answers(
    two: tuple[LakeStorage, LakeStorage], tmp_path: Path
) -> None:
    runs = step_runs()
    now = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    db = Database(tmp_path / "reference.duckdb")
    await store_all(db, runs.requests)
    try:
        expected = answers(db.cursor(), runs, now)
    finally:
        db.close()
    assert [m for m, *_ in expected["job", runs.run2]] == ["GET /page/2 retried", "fetching page 2"]
    assert expected["stats", runs.service]["logs"]["total"] == 5  # the jobs' records only
    for i, request in enumerate(runs.requests):
        await store(two[i % 2].writer, request)
    await settle(*two)
    for side in two:
        got = answers(side.db.cursor(), runs, now)
        for key, value in expected.items():
            assert got[key] == value, key
