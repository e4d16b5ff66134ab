"""Decorators, threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from concurrent.futures import ThreadPoolExecutor

import jobtrail
from jobtrail.semconv import JOB_ID, JOB_METADATA_PREFIX, JOB_STEP, JOB_STEP_SEQ, JOB_TYPE

from .conftest import Recorded, attrs


def test_decorator_on_sync_function_keeps_signature(rec: Recorded) -> None:
    def export_rows(table: str, *, limit: int = 10) -> int:
        """Export rows."""
        job = jobtrail.current_job()
        assert job is not None
        job.info("exporting", table=table)
        return limit * 2

    wrapped = rec.agent.job_fn(type="export", owner="bi", region="eu")(export_rows)
    assert inspect.signature(wrapped) == inspect.signature(export_rows)
    assert wrapped.__name__ == "export_rows" and wrapped.__doc__ == "Export rows."
    assert wrapped("users", limit=4) == 8
    span = rec.spans()[0]
    assert span.name.endswith("export_rows")
    assert attrs(span)[JOB_TYPE] == "export"
    assert attrs(span)[JOB_METADATA_PREFIX + "region"] == "eu"
    assert attrs(rec.plain_logs()[0])[JOB_ID] == attrs(span)[JOB_ID]


async def test_decorator_on_async_function(rec: Recorded) -> None:
    @rec.agent.job_fn("nightly report", type="report")
    async def build(day: str) -> str:
        await asyncio.sleep(0)
        job = jobtrail.current_job()
        assert job is not None and job.name == "nightly report"
        return day.upper()

    async def reference(day: str) -> str:
        return day

    assert inspect.iscoroutinefunction(build)
    assert inspect.signature(build) == inspect.signature(reference)
    assert await build("mon") == "MON"
    assert await build("tue") == "TUE"
    assert [s.name for s in rec.spans()] == ["nightly report", "nightly report"]
    ids = {attrs(s)[JOB_ID] for s in rec.spans()}
    assert len(ids) == 2  # one job per call


def test_threads_via_copy_context(rec: Recorded) -> None:
    def work(part: int) -> None:
        job = jobtrail.current_job()
        assert job is not None
        with job.step(f"part {part}") as step:
            step.info("working", part=part)

    with rec.agent.job("parallel", type="batch") as job, ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(contextvars.copy_context().run, work, i) for i in range(4)]
        for future in futures:
            future.result()
    job_span = rec.span("parallel")
    steps = [s for s in rec.spans() if s.name.startswith("part ")]
    assert sorted(attrs(s)[JOB_STEP_SEQ] for s in steps) == [1, 2, 3, 4]
    for span in steps:
        assert span.parent is not None and span.parent.span_id == job_span.context.span_id
    by_step = {s.name: s for s in steps}
    for record in rec.plain_logs():
        a = attrs(record)
        assert a[JOB_ID] == job.id
        assert record.span_id == by_step[a[JOB_STEP]].context.span_id


def test_step_from_thread_without_context_still_parents_to_job(rec: Recorded) -> None:
    with rec.agent.job("outer", type="t") as job, ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: job.step("bare thread").__enter__().__exit__(None, None, None))
        pool.shutdown(wait=True)
    step = rec.span("bare thread")
    assert step.parent is not None
    assert step.parent.span_id == rec.span("outer").context.span_id


async def test_asyncio_tasks_inherit_the_job(rec: Recorded) -> None:
    async def fetch(n: int) -> None:
        job = jobtrail.current_job()
        assert job is not None
        async with job.step(f"fetch {n}"):
            await asyncio.sleep(0.001 * (3 - n))

    async with rec.agent.job("crawl", type="crawl"):
        await asyncio.gather(*(fetch(n) for n in range(3)))
    seqs = sorted(attrs(s)[JOB_STEP_SEQ] for s in rec.spans() if s.name.startswith("fetch"))
    assert seqs == [1, 2, 3]
    assert jobtrail.current_job() is None
