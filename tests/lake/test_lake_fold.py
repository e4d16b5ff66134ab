"""Stored folds (``jobs_folded``, ``steps_folded``): the same answers, late facts included.

A fold pass stores the folded rows of every job and step; the views read them and fold only
facts committed after the pass. These tests check that passes at any moment — between any
two requests, on either collector, with views that know the pass or not — never change an
answer, and that a fact arriving after a pass still shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from lakehelp import open_pair, settle, store
from otlp_build import log, logs_request, new_span_id, new_trace_id, span, traces_request
from test_lake_storage import _logs, _normalise, embedded_answers, scenario

from jobtrail.storage import queries
from jobtrail.storage._lake_fold import fold_settled
from jobtrail.storage._lake_maintenance import LakeRetention, expire
from jobtrail.storage._lake_tasks import mark_lost_on_lake
from jobtrail.storage._lake_views import create_fold_views, fold_marks
from jobtrail.storage._query_model import StatsFilter
from jobtrail.storage.lake import LakeConfig, LakeStorage


@pytest.fixture
def pair(lake_config: LakeConfig) -> Iterator[tuple[LakeStorage, LakeStorage]]:
    """Two collectors on a lake of this module (fresh job ids per test keep tests apart)."""
    with open_pair(lake_config) as sides:
        yield sides


def answers(cur: Any, ids: dict[str, str]) -> dict[str, Any]:
    return {name: (_normalise(queries.get_job(cur, job_id)), _logs(cur, job_id))
            for name, job_id in ids.items()}  # fmt: skip


def count(cur: Any, sql: str, *params: Any) -> int:
    row = cur.execute(sql, list(params)).fetchone()
    return int(row[0])


async def test_passes_between_any_two_requests_give_the_embedded_answers(
    pair: tuple[LakeStorage, LakeStorage], tmp_path: Path
) -> None:
    reqs, ids = scenario()
    expected = await embedded_answers(tmp_path, reqs, ids)
    a, b = pair
    for i, request in enumerate(reqs):
        side = (a, b)[i % 2]
        await store(side.writer, request)
        await settle(a, b)
        if i % 3 == 0:  # a pass on one collector; only that one's views know it
            side.tasks.fold()
    await settle(a, b)
    assert fold_marks(a.db.cursor(), "lake") > (-1, -1)
    for side in pair:  # one with the newest marks, one with older ones
        assert answers(side.db.cursor(), ids) == expected
    a.tasks.fold()
    b.tasks.use_marks(a.tasks.view_marks)
    for side in pair:  # every job of the scenario is stored now, and nothing twice
        cur = side.db.cursor()
        assert answers(cur, ids) == expected
        assert count(cur, "SELECT count(id) - count(DISTINCT id) FROM lake.jobs_folded") == 0


async def test_a_late_fact_after_a_pass_still_shows(pair: tuple[LakeStorage, LakeStorage]) -> None:
    a, b = pair
    t, s, step = new_trace_id(), new_span_id(), new_span_id()
    jid = s.hex()
    common = {"job.id": jid, "job.type": "late"}
    await store(a.writer, ("logs", logs_request([
        log(t, s, "go", {**common, "event.name": "job.started"}),
        log(t, step, "step", {**common, "event.name": "step.started", "job.step": "one"}),
    ])))  # fmt: skip
    a.tasks.fold()
    b.tasks.use_marks(a.tasks.view_marks)
    for side in pair:
        job = queries.get_job(side.db.cursor(), jid)
        assert job["status"] == "running" and job["steps"][0]["status"] == "running"
    row = a.db.cursor().execute("SELECT status FROM lake.jobs_folded WHERE id = ?", [jid])
    assert row.fetchall() == [("running",)], "the pass stored the running job"
    # The spans arrive after the pass, at the other collector: no pass has seen them.
    await store(b.writer, ("traces", traces_request([
        span(t, step, "one", {"job.id": jid, "job.step": "one", "job.step.status": "failed"},
             parent=s, error="bad"),
        span(t, s, "late job", common),
    ])))  # fmt: skip
    for side in pair:
        cur = side.db.cursor()
        job = queries.get_job(cur, jid)
        assert job["status"] == "completed"
        assert [(x["name"], x["status"], x["error"]) for x in job["steps"]] == [
            ("one", "failed", "bad")
        ]
        listed = queries.list_jobs(cur, queries.JobFilter(type="late"))["jobs"]
        assert [(j["id"], j["status"]) for j in listed] == [(jid, "completed")]
    # "lost" is a fact too: appended after a pass, it shows; a later pass keeps it.
    t2, s2 = new_trace_id(), new_span_id()
    await store(a.writer, ("logs", logs_request([log(t2, s2, "go", {
        "event.name": "job.started", "job.type": "late", "job.id": s2.hex()})])))  # fmt: skip
    b.tasks.fold()
    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=5)
    await a.writer.run(lambda con: mark_lost_on_lake(con, "lake", 60, now=later))
    assert queries.get_job(a.db.cursor(), s2.hex())["status"] == "lost"
    b.tasks.fold()
    a.tasks.use_marks(b.tasks.view_marks)
    for side in pair:
        assert queries.get_job(side.db.cursor(), s2.hex())["status"] == "lost"
        assert queries.get_job(side.db.cursor(), jid)["status"] == "completed"


async def test_stale_marks_and_no_marks_read_the_same_rows(
    pair: tuple[LakeStorage, LakeStorage],
) -> None:
    """Views with any marks up to the lake's give the same jobs, steps and stats."""
    a, _ = pair
    reqs, ids = scenario()
    for request in reqs[: len(reqs) // 2]:
        await store(a.writer, request)
    await settle(a)
    a.tasks.fold()
    middle = a.tasks.view_marks
    for request in reqs[len(reqs) // 2 :]:
        await store(a.writer, request)
    await settle(a)
    a.tasks.fold()
    cur = a.db.cursor()
    now = datetime.now(UTC).replace(tzinfo=None)
    window = StatsFilter(since=now - timedelta(days=1), until=now + timedelta(hours=1))

    def read() -> dict[str, Any]:
        stats = queries.get_stats(cur, window)
        stats["jobs"].pop("duration_ms", None)  # float sums depend on row order
        return {
            "jobs": cur.execute("SELECT * FROM jobs ORDER BY id").fetchall(),
            "steps": cur.execute("SELECT * FROM steps ORDER BY trace_id, span_id").fetchall(),
            "stats": stats,
            "answers": answers(cur, ids),
        }

    newest = read()
    for marks in ((-1, -1), middle):
        create_fold_views(cur, "lake", marks)
        got = read()
        for key, value in newest.items():
            assert got[key] == value, (marks, key)
    create_fold_views(cur, "lake", a.tasks.view_marks)


async def test_two_passes_at_once_store_each_job_once(
    pair: tuple[LakeStorage, LakeStorage],
) -> None:
    a, b = pair
    t, s = new_trace_id(), new_span_id()
    await store(a.writer, ("traces", traces_request([span(t, s, "race", {"job.type": "race"})])))
    first, second = a.db.cursor(), b.db.cursor()
    first.execute("BEGIN TRANSACTION")  # hold a's pass open while b's commits
    first.execute("DELETE FROM lake.fold_marks")
    fold_settled(second, "lake")
    with pytest.raises(duckdb.Error):
        first.execute("COMMIT")
    cur = a.db.cursor()
    assert count(cur, "SELECT count(*) FROM lake.jobs_folded WHERE id = ?", s.hex()) == 1
    assert count(cur, "SELECT count(*) FROM lake.fold_marks") == 1


async def test_retention_deletes_the_stored_folds_of_what_it_deletes(
    pair: tuple[LakeStorage, LakeStorage],
) -> None:
    a, _ = pair
    t, s, step = new_trace_id(), new_span_id(), new_span_id()
    long_ago = int((datetime.now(UTC) - timedelta(days=60)).timestamp() * 1e9)
    await store(a.writer, ("traces", traces_request([
        span(t, step, "s", {"job.step": "s"}, parent=s, start_ns=long_ago),
        span(t, s, "old", {"job.type": "old"}, start_ns=long_ago),
    ])))  # fmt: skip
    await settle(a)
    a.tasks.fold()
    cur = a.db.cursor()
    for table in ("jobs_folded", "steps_folded"):
        assert count(cur, f"SELECT count(*) FROM lake.{table} WHERE trace_id = ?", t.hex()) == 1
    deleted = expire(cur, "lake", LakeRetention(max_age_s=30 * 86400))
    assert deleted.get("jobs_folded", 0) >= 1 and deleted.get("steps_folded", 0) >= 1
    with pytest.raises(queries.JobNotFound):
        queries.get_job(cur, s.hex())
    for table in ("jobs_folded", "steps_folded"):
        assert count(cur, f"SELECT count(*) FROM lake.{table} WHERE trace_id = ?", t.hex()) == 0
