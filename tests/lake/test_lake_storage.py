"""The lake backend in-process: same answers as the embedded file, whichever collector stores what.

Two :class:`LakeDatabase` instances on one lake are two collectors (two DuckDB instances,
as in two processes). The reference for every answer is the embedded file fed the same
requests through the embedded writer.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lakehelp import Request, settle, store
from otlp_build import log, logs_request, new_span_id, new_trace_id, span, traces_request

from jobtrail.storage import Database, queries
from jobtrail.storage._lake_tasks import mark_lost_on_lake
from jobtrail.storage.lake import LakeStorage
from jobtrail.storage.writer import BatchWriter


def scenario() -> tuple[list[Request], dict[str, str]]:
    """Requests covering the merge rules, in time order; and job name -> id.

    An agent job with lifecycle records and steps; a job retried once; a cancelled job; a
    job still running; two queued jobs, one waiting and one taken by a worker; and a
    plain-SDK job whose logs, step and child job link only through span ancestry.
    """
    reqs: list[Request] = []
    ids: dict[str, str] = {}

    def logs(*records: Any) -> None:
        reqs.append(("logs", logs_request(list(records))))

    def spans(*items: Any) -> None:
        reqs.append(("traces", traces_request(list(items))))

    # agent-style job
    t, job, s1, s2 = new_trace_id(), new_span_id(), new_span_id(), new_span_id()
    jid = ids["agent"] = job.hex()
    common = {"job.id": jid}
    start = time.time_ns()
    logs(log(t, job, "job.started", {**common, "event.name": "job.started", "job.name": "agent job",
                                      "job.type": "import",
                                      "job.owner": "ann", "job.total_steps": 2,
                                      "job.metadata.source": "s3://x"}))  # fmt: skip
    logs(log(t, s1, "step.started", {**common, "event.name": "step.started", "job.step": "one",
                                     "job.step.seq": 1}))  # fmt: skip
    logs(*(log(t, s1, f"one {i}", {**common, "job.step": "one"}, severity=9 + 4 * (i % 2))
           for i in range(6)))  # fmt: skip
    logs(log(t, job, "p", {**common, "event.name": "job.progress", "job.progress": 50,
                           "job.current_step": "two"}))  # fmt: skip
    spans(span(t, s1, "one", {**common, "job.step": "one", "job.step.seq": 1}, parent=job,
               start_ns=start))  # fmt: skip
    logs(log(t, job, "hb", {**common, "event.name": "job.heartbeat"}))
    logs(log(t, s2, "two 0", {**common, "job.step": "two"}, severity=17))
    spans(
        span(t, s2, "two", {**common, "job.step": "two", "job.step.seq": 2,
                            "job.step.status": "failed"}, parent=job, error="bad row"),
        span(t, job, "agent job", {**common, "job.type": "import", "job.result": '{"rows": 3}',
                                   "job.metadata.x": 1},
             start_ns=start, duration_ms=80),
    )  # fmt: skip
    # a job retried once (same job.id, attempts 1 and 2)
    t, a1, a2 = new_trace_id(), new_span_id(), new_span_id()
    rid = ids["retried"] = "retried-job"
    base = {"job.id": rid, "job.type": "sync"}
    logs(log(t, a1, "started 1", {**base, "event.name": "job.started", "job.attempt": 1}))
    spans(span(t, a1, "sync", {**base, "job.attempt": 1, "job.will_retry": True}, error="timeout"))
    logs(log(t, a2, "started 2", {**base, "event.name": "job.started", "job.attempt": 2}))
    spans(span(t, a2, "sync", {**base, "job.attempt": 2}))
    # a cancelled job, and one still running
    t, c = new_trace_id(), new_span_id()
    ids["cancelled"] = c.hex()
    spans(span(t, c, "report", {"job.type": "report", "job.status": "cancelled",
                                "job.cancel_reason": "user"}))  # fmt: skip
    t, r = new_trace_id(), new_span_id()
    ids["running"] = r.hex()
    logs(log(t, r, "go", {"event.name": "job.started", "job.type": "long", "job.id": r.hex()}))
    logs(log(t, r, "p", {"event.name": "job.progress", "job.id": r.hex(), "job.progress": 30}))
    # a job waiting in its queue, and one a worker took (the producer's trace is not theirs)
    queued = {"event.name": "job.queued", "job.type": "export", "job.owner": "ops"}
    ids["waiting"], ids["taken"] = "waiting-job", "taken-job"
    logs(log(new_trace_id(), new_span_id(), "q", {**queued, "job.id": "waiting-job"}))
    logs(log(new_trace_id(), new_span_id(), "q", {**queued, "job.id": "taken-job",
                                                  "job.name": "export eu"}))  # fmt: skip
    t, w = new_trace_id(), new_span_id()
    logs(log(t, w, "go", {"event.name": "job.started", "job.type": "export",
                          "job.id": "taken-job"}))  # fmt: skip
    # a plain-SDK job: everything links through span ancestry
    t, pj, ps, http, child = (new_trace_id(), *(new_span_id() for _ in range(4)))
    ids["plain"], ids["child"] = pj.hex(), child.hex()
    logs(log(t, pj, "plain starting"), log(t, ps, "plain step line", severity=13),
         log(t, child, "child failed", severity=17))  # fmt: skip
    spans(span(t, child, "sub", {"job.type": "sub"}, parent=http, error="boom"))
    spans(span(t, http, "GET /file", {"http.method": "GET"}, parent=ps))
    spans(span(t, ps, "download", {"job.step": "download", "job.step.seq": 1}, parent=pj))
    spans(span(t, pj, "plain job", {"job.type": "import", "job.owner": "bob"}, duration_ms=50))
    return reqs, ids


def _normalise(job: dict[str, Any]) -> dict[str, Any]:
    """A job detail without what legitimately differs: receive times, JSON time formatting."""
    out = dict(job)
    out.pop("last_seen")  # the span's receive time
    for entry in out.get("attempts") or []:
        for key in ("started_at", "ended_at"):
            if entry.get(key):
                entry[key] = datetime.fromisoformat(entry[key])
    return out


def _logs(cur: Any, job_id: str) -> list[tuple[Any, ...]]:
    page = queries.job_logs(cur, job_id, limit=10_000)["logs"]
    ids = [e["id"] for e in page]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    return sorted((e["message"], e["level"], e["step"], e["job_id"]) for e in page)


async def embedded_answers(tmp_path: Path, reqs: list[Request], ids: dict[str, str]) -> Any:
    db = Database(tmp_path / "reference.duckdb")
    writer = BatchWriter(db)
    writer.start()
    try:
        for request in reqs:
            await store(writer, request)
        cur = db.cursor()
        return {name: (_normalise(queries.get_job(cur, job_id)), _logs(cur, job_id))
                for name, job_id in ids.items()}  # fmt: skip
    finally:
        await asyncio.to_thread(writer.close)
        db.close()


async def test_split_between_collectors_gives_the_embedded_answers(
    two: tuple[LakeStorage, LakeStorage], tmp_path: Path
) -> None:
    reqs, ids = scenario()
    expected = await embedded_answers(tmp_path, reqs, ids)
    assert expected["retried"][0]["status"] == "completed"
    assert [a["status"] for a in expected["retried"][0]["attempts"]] == ["failed", "completed"]
    assert expected["child"][0]["parent_job_id"] == ids["plain"]
    # Alternate collectors request by request, and let the second one's commits land first.
    a, b = two
    await asyncio.gather(
        *(store((a if i % 2 else b).writer, r) for i, r in enumerate(reqs) if i % 2 == 0)
    )
    for i, request in enumerate(reqs):
        if i % 2:
            await store(a.writer, request)
    await settle(a, b)
    for side in two:
        cur = side.db.cursor()
        got = {name: (_normalise(queries.get_job(cur, job_id)), _logs(cur, job_id))
               for name, job_id in ids.items()}  # fmt: skip
        for name in ids:
            assert got[name] == expected[name], name


async def test_any_split_and_order_links_plain_jobs(two: tuple[LakeStorage, LakeStorage]) -> None:
    """The plain-SDK job of the scenario, its requests in several orders over two collectors."""
    orders = list(itertools.permutations(range(5)))[::41]
    for n, order in enumerate(orders):
        fresh, ids = scenario()  # new trace and span ids for every order
        fresh = fresh[-5:]
        for k, i in enumerate(order):
            await store(two[(k + n) % 2].writer, fresh[i])
        await settle(*two)
        cur = two[n % 2].db.cursor()
        child = queries.get_job(cur, ids["child"])
        assert child["parent_job_id"] == ids["plain"], order
        job = queries.get_job(cur, ids["plain"])
        assert [(s["name"], s["status"]) for s in job["steps"]] == [("download", "completed")]
        assert _logs(cur, ids["plain"]) == [
            ("plain starting", "info", None, ids["plain"]),
            ("plain step line", "warn", "download", ids["plain"]),
        ], order


async def test_log_ids_follow_commit_order_across_collectors(
    two: tuple[LakeStorage, LakeStorage],
) -> None:
    """A transaction that started first but commits last still gets the larger ids."""
    a, b = two
    t = new_trace_id()
    late = a.db.cursor()
    late.execute("BEGIN TRANSACTION")
    late.execute(
        "INSERT INTO lake.log_records (body, trace_id, received_at) VALUES ('late', ?, now())",
        [t.hex()],
    )
    await store(b.writer, ("logs", logs_request([log(t, None, f"early {i}") for i in range(3)])))
    reader = b.db.cursor()
    seen = queries.list_logs(reader, after_id=0, limit=100_000)["logs"]
    late.execute("COMMIT")
    after = queries.list_logs(reader, after_id=seen[-1]["id"])["logs"]
    assert [e["message"] for e in seen][-3:] == ["early 0", "early 1", "early 2"]
    assert [e["message"] for e in after] == ["late"], "after_id paging never skips a commit"
    first = reader.execute("SELECT min(id) FROM logs").fetchone()
    assert first == (1,), "ids start at 1, as in the embedded file"


async def test_lost_is_a_fact_a_later_heartbeat_or_span_outranks(
    two: tuple[LakeStorage, LakeStorage],
) -> None:
    a, b = two
    t, s = new_trace_id(), new_span_id()
    jid = s.hex()
    await store(a.writer, ("logs", logs_request([log(t, s, "go", {
        "event.name": "job.started", "job.type": "long", "job.id": jid})])))  # fmt: skip
    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=5)
    lost = await b.writer.run(lambda con: mark_lost_on_lake(con, "lake", 60, now=later))
    assert jid in lost
    cur = a.db.cursor()
    assert queries.get_job(cur, jid)["status"] == "lost"
    await store(b.writer, ("logs", logs_request([log(t, s, "hb", {
        "event.name": "job.heartbeat", "job.id": jid})])))  # fmt: skip
    assert queries.get_job(cur, jid)["status"] == "running"
    await store(a.writer, ("traces", traces_request([span(t, s, "long", {"job.type": "long"})])))
    assert queries.get_job(cur, jid)["status"] == "completed"
