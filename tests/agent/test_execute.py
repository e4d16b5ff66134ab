"""execute_job, start_job, attach_job, run_step, fail, context_executor, inherited parents."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

import jobtrail
from jobtrail.agent._propagation import child_environment, inherited_parent
from jobtrail.semconv import JOB_CURRENT_STEP, JOB_ID, JOB_PARENT_ID, JOB_RESULT, JOB_STATUS

from .conftest import Recorded, attrs, make_recorded


def test_execute_job_passes_id_and_progress(rec: Recorded) -> None:
    seen: list[str] = []

    def work(job_id: str, update_progress: Any) -> dict[str, int]:
        seen.append(job_id)
        update_progress(50, "half")
        return {"n": 1}

    assert rec.agent.execute_job(work, name="w", type="t", owner="me") == {"n": 1}
    span = rec.span("w")
    assert attrs(span)[JOB_ID] == seen[0] and attrs(span)[JOB_RESULT] == '{"n": 1}'
    assert attrs(span)[JOB_CURRENT_STEP] == "half"
    assert [attrs(r)["job.progress"] for r in rec.events("job.progress")] == [50.0]


async def test_execute_job_async_and_failure(rec: Recorded) -> None:
    async def work(job_id: str, update_progress: Any) -> str:
        await update_progress(10)
        return job_id

    job_id = await rec.agent.execute_job(work, name="a", type="t")
    assert attrs(rec.span("a"))[JOB_ID] == job_id

    def broken(job_id: str, update_progress: Any) -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError):
        rec.agent.execute_job(broken, name="b", type="t")
    assert attrs(rec.span("b"))[JOB_STATUS] == "failed"


async def test_start_job_in_a_task_and_in_a_thread(rec: Recorded) -> None:
    finished = asyncio.Event()

    async def work(job_id: str, update_progress: Any) -> int:
        await asyncio.sleep(0.01)
        current = jobtrail.current_job()
        assert current is not None and current.id == job_id
        finished.set()
        return 3

    job = rec.agent.start_job(work, name="bg", type="t")
    assert job.status == "running" and job.id
    assert jobtrail.current_job() is None  # the caller's context is untouched
    await asyncio.wait_for(finished.wait(), 5)
    await asyncio.sleep(0.01)
    assert job.status == "completed" and job.result == 3

    done = threading.Event()

    def failing(job_id: str, update_progress: Any) -> None:
        done.set()
        raise RuntimeError("background failure")

    thread_job = rec.agent.start_job(failing, name="thread", type="t")
    assert done.wait(5)
    for _ in range(100):
        if thread_job.status != "running":
            break
        await asyncio.sleep(0.01)
    assert thread_job.status == "failed"


def test_run_step_recovers_or_raises(rec: Recorded) -> None:
    def boom(step: jobtrail.Step) -> None:
        raise RuntimeError("panic")

    with rec.agent.job("j", type="t") as job:
        assert job.run_step("ok", lambda step: step.name) == "ok"
        assert job.run_step("recovered", boom, reraise=False) is None
        with pytest.raises(RuntimeError):
            job.run_step("raised", boom)
        with pytest.raises(KeyboardInterrupt):
            job.run_step("interrupted", lambda step: (_ for _ in ()).throw(KeyboardInterrupt()), reraise=False)
    statuses = {s.name: attrs(s).get("job.step.status") for s in rec.spans() if s.name != "j"}
    assert statuses == {"ok": "completed", "recovered": "failed", "raised": "failed", "interrupted": "failed"}
    assert job.status == "completed"


async def test_run_step_async(rec: Recorded) -> None:
    async def step_fn(step: jobtrail.Step) -> int:
        await asyncio.sleep(0)
        return step.seq

    async def boom(step: jobtrail.Step) -> None:
        raise ValueError("x")

    async with rec.agent.job("j", type="t") as job:
        assert await job.run_step("one", step_fn) == 1
        assert await job.run_step("two", boom, reraise=False) is None


def test_fail_with_a_message_or_exception(rec: Recorded) -> None:
    with rec.agent.job("msg", type="t") as job:
        job.fail("exit code 3")
    span = rec.span("msg")
    assert job.status == "failed" and attrs(span)[JOB_STATUS] == "failed"
    assert span.status.status_code is StatusCode.ERROR and span.status.description == "exit code 3"
    assert [r.body for r in rec.plain_logs()] == ["job failed: exit code 3"]
    with rec.agent.job("exc", type="t") as job:
        job.fail(ValueError("bad input"))
    assert rec.span("exc").events[0].name == "exception"
    with rec.agent.job("both", type="t") as job:
        job.fail("x")
        job.cancel("stopped")
    assert job.status == "cancelled"


def test_attach_job_links_records_without_a_span(rec: Recorded) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with rec.agent.attach_job("remote-job", traceparent=traceparent) as attached:
        assert jobtrail.current_job() is attached
        attached.info("hello")
        with rec.agent.job("child", type="t"):
            pass
    assert jobtrail.current_job() is None
    (hello, *_rest) = rec.plain_logs()
    assert attrs(hello)[JOB_ID] == "remote-job"
    assert format(hello.span_id, "016x") == "b7ad6b7169203331"
    child = rec.span("child")
    assert attrs(child)[JOB_PARENT_ID] == "remote-job"
    assert child.parent is not None and format(child.parent.span_id, "016x") == "b7ad6b7169203331"
    assert [s.name for s in rec.spans()] == ["child"]  # attaching records no span
    assert rec.events("job.started")[0].attributes[JOB_PARENT_ID] == "remote-job"


def test_attach_by_traceparent_only(rec: Recorded) -> None:
    with rec.agent.attach_job(traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") as job:
        job.warn("by span only")
    (record,) = rec.plain_logs()
    assert JOB_ID not in attrs(record) and format(record.span_id, "016x") == "b7ad6b7169203331"


def test_context_executor_propagates(rec: Recorded) -> None:
    with rec.agent.job("pool", type="t") as job, jobtrail.context_executor(2) as pool:
        ids = list(pool.map(lambda _n: jobtrail.current_job().id, range(4)))  # type: ignore[union-attr]
    assert ids == [job.id] * 4


def test_inherited_parent_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = make_recorded()
    with parent.agent.job("wrapper", type="command") as wrapper:
        env = child_environment(wrapper.span, wrapper.id)
    parent.agent.shutdown(timeout_s=1)
    assert env["JOBTRAIL_PARENT_JOB_ID"] == wrapper.id and env["TRACEPARENT"].startswith("00-")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    child = make_recorded()
    try:
        with child.agent.job("child", type="t"):
            with child.agent.job("grandchild", type="t"):
                pass
        span = child.span("child")
        assert attrs(span)[JOB_PARENT_ID] == wrapper.id
        assert span.parent is not None and format(span.parent.span_id, "016x") == wrapper.id
        assert span.context.trace_id == wrapper.span.get_span_context().trace_id
        nested = child.span("grandchild")  # parent is the child job, not the wrapper
        assert attrs(nested)[JOB_PARENT_ID] == attrs(span)[JOB_ID]
    finally:
        child.agent.shutdown(timeout_s=1)
    monkeypatch.setenv("TRACEPARENT", "garbage")
    monkeypatch.delenv("JOBTRAIL_PARENT_JOB_ID")
    assert inherited_parent().context is None and inherited_parent().job_id is None


def test_instrument_logging_is_idempotent_and_sets_levels() -> None:
    rec = make_recorded()
    logger = logging.getLogger("tests.agent.instrumented")
    old = logger.level
    logger.setLevel(logging.WARNING)
    try:
        rec.agent.instrument_logging(logging.INFO, logger=logger)
        rec.agent.instrument_logging(logging.INFO, logger="tests.agent.instrumented")
        assert logger.level == logging.INFO
        child = logging.getLogger("tests.agent.instrumented.child")
        rec.agent.instrument_logging("DEBUG", logger=child)  # covered by the parent's handler
        assert len([h for h in logger.handlers if type(h).__module__.startswith("jobtrail")]) == 1
        assert child.handlers == []
        child.debug("debug from child")  # the parent's handler was lowered to DEBUG
        logger.info("info")
        logger.debug("not captured: the parent logger is at INFO")
        assert [r.body for r in rec.plain_logs()] == ["debug from child", "info"]
        with pytest.raises(ValueError):
            rec.agent.instrument_logging("LOUD")
    finally:
        rec.agent.shutdown(timeout_s=1)
        logger.setLevel(old)
        logging.getLogger("tests.agent.instrumented.child").setLevel(logging.NOTSET)
    assert [h for h in logger.handlers if type(h).__module__.startswith("jobtrail")] == []
