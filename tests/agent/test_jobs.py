"""Job and step spans: attributes, numbering, nesting, statuses."""

from __future__ import annotations

import asyncio
import json

import pytest
from opentelemetry.trace import StatusCode

import jobtrail
from jobtrail.semconv import (
    EVENT_JOB_QUEUED,
    EVENT_JOB_STARTED,
    EVENT_STEP_STARTED,
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
    JOB_ATTEMPT,
    JOB_CANCEL_REASON,
    JOB_ID,
    JOB_METADATA_PREFIX,
    JOB_NAME,
    JOB_OPERATION,
    JOB_OWNER,
    JOB_PARENT_ID,
    JOB_PROGRESS,
    JOB_RESULT,
    JOB_STATUS,
    JOB_STEP,
    JOB_STEP_SEQ,
    JOB_STEP_SKIP_REASON,
    JOB_STEP_STATUS,
    JOB_TOTAL_STEPS,
    JOB_TYPE,
)

from .conftest import Recorded, attrs, span_hex


def test_job_span_attributes(rec: Recorded) -> None:
    with rec.agent.job(
        "import users",
        type="import",
        owner="ops",
        operation="crm-sync",
        total_steps=3,
        source="crm",
        batch={"size": 10},
        name="metadata may be called name",
    ) as job:
        assert jobtrail.current_job() is job
        job.result = {"rows": 120}
    assert jobtrail.current_job() is None
    span = rec.span("import users")
    assert attrs(span) == {
        JOB_TYPE: "import",
        JOB_NAME: "import users",
        JOB_ATTEMPT: 1,
        JOB_OWNER: "ops",
        JOB_OPERATION: "crm-sync",
        JOB_TOTAL_STEPS: 3,
        JOB_METADATA_PREFIX + "source": "crm",
        JOB_METADATA_PREFIX + "batch": '{"size": 10}',
        JOB_METADATA_PREFIX + "name": "metadata may be called name",
        JOB_ID: span_hex(span),
        JOB_STATUS: "completed",
        JOB_PROGRESS: 100.0,
        JOB_RESULT: '{"rows": 120}',
    }
    assert span.status.status_code is StatusCode.OK
    assert span.parent is None
    assert job.id == span_hex(span) and len(job.id) == 16
    assert job.status == "completed"


def test_given_id_and_attempt(rec: Recorded) -> None:
    with rec.agent.job("retry", type="sync", id="job-42", attempt=3) as job:
        pass
    assert job.id == "job-42"
    span_attrs = attrs(rec.span("retry"))
    assert span_attrs[JOB_ID] == "job-42"
    assert span_attrs[JOB_ATTEMPT] == 3


def test_steps_are_numbered_children_of_the_job(rec: Recorded) -> None:
    with rec.agent.job("pipeline", type="etl") as job:
        with job.step("download", url="https://x") as step:
            assert jobtrail.current_step() is step
        with job.step("transform"):
            pass
        with job.step("load"):
            pass
    assert jobtrail.current_step() is None
    job_span = rec.span("pipeline")
    for seq, name in enumerate(["download", "transform", "load"], start=1):
        span = rec.span(name)
        assert span.parent is not None and span.parent.span_id == job_span.context.span_id
        expected = {
            JOB_STEP: name,
            JOB_STEP_SEQ: seq,
            JOB_ID: job.id,
            JOB_STEP_STATUS: "completed",
        }
        if name == "download":
            expected[JOB_METADATA_PREFIX + "url"] = "https://x"
        assert attrs(span) == expected
        assert span.status.status_code is StatusCode.OK


def test_lifecycle_records(rec: Recorded) -> None:
    with rec.agent.job("nightly", type="report", owner="cron", total_steps=1, team="bi") as job:
        with job.step("render"):
            pass
    job_span, step_span = rec.span("nightly"), rec.span("render")
    (started,) = rec.events(EVENT_JOB_STARTED)
    assert started.body == "job started"
    assert started.severity_number.value == 9 and started.severity_text == "INFO"
    assert started.event_name == EVENT_JOB_STARTED
    assert started.span_id == job_span.context.span_id
    assert started.trace_id == job_span.context.trace_id
    a = attrs(started)
    assert a[JOB_ID] == job.id and a[JOB_TYPE] == "report" and a[JOB_NAME] == "nightly"
    assert a[JOB_OWNER] == "cron" and a[JOB_TOTAL_STEPS] == 1 and a[JOB_ATTEMPT] == 1
    assert a[JOB_METADATA_PREFIX + "team"] == "bi"
    (step_started,) = rec.events(EVENT_STEP_STARTED)
    assert step_started.span_id == step_span.context.span_id
    assert attrs(step_started) == {
        "event.name": EVENT_STEP_STARTED,
        JOB_ID: job.id,
        JOB_TYPE: "report",
        JOB_NAME: "nightly",
        JOB_STEP: "render",
        JOB_STEP_SEQ: 1,
    }


def test_nested_job_is_a_child_job(rec: Recorded) -> None:
    with rec.agent.job("bulk migrate", type="orchestration") as parent:
        with parent.step("fan out"):
            with rec.agent.job("migrate vm1", type="migration") as child:
                assert jobtrail.current_job() is child
                assert jobtrail.current_step() is None
                assert child.parent is parent
            assert jobtrail.current_job() is parent
    child_span, step_span = rec.span("migrate vm1"), rec.span("fan out")
    assert attrs(child_span)[JOB_PARENT_ID] == parent.id
    assert child_span.parent is not None
    assert child_span.parent.span_id == step_span.context.span_id
    assert JOB_PARENT_ID not in attrs(rec.span("bulk migrate"))
    (child_started,) = [r for r in rec.events(EVENT_JOB_STARTED) if attrs(r)[JOB_ID] == child.id]
    assert attrs(child_started)[JOB_PARENT_ID] == parent.id


def test_failure_marks_step_and_job_and_reraises_same_exception(rec: Recorded) -> None:
    error = ValueError("bad row 7")
    with pytest.raises(ValueError) as caught:
        with rec.agent.job("import", type="import") as job:
            with job.step("parse") as step:
                raise error
    assert caught.value is error
    assert job.status == "failed" and step.status == "failed"
    for name in ("import", "parse"):
        span = rec.span(name)
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "ValueError: bad row 7"
        (event,) = [e for e in span.events if e.name == "exception"]
        assert attrs(event)[EXCEPTION_TYPE] == "ValueError"
    assert attrs(rec.span("import"))[JOB_STATUS] == "failed"
    assert attrs(rec.span("parse"))[JOB_STEP_STATUS] == "failed"
    errors = [r for r in rec.plain_logs() if r.severity_text == "ERROR"]
    assert [r.body for r in errors] == [
        "step 'parse' failed: ValueError: bad row 7",
        "job failed: ValueError: bad row 7",
    ]
    for record in errors:
        a = attrs(record)
        assert a[EXCEPTION_TYPE] == "ValueError"
        assert a[EXCEPTION_MESSAGE] == "bad row 7"
        assert "raise error" in a[EXCEPTION_STACKTRACE]
        assert a[JOB_ID] == job.id
        assert record.severity_number.value == 17
    assert attrs(errors[0])[JOB_STEP] == "parse"
    assert errors[0].span_id == rec.span("parse").context.span_id
    assert errors[1].span_id == rec.span("import").context.span_id


def test_skipped_step_ends_normally(rec: Recorded) -> None:
    with rec.agent.job("deploy", type="deploy") as job:
        with job.step("migrate") as step:
            step.skip("no pending migrations")
            reached = True
    assert reached and step.status == "skipped" and job.status == "completed"
    span = rec.span("migrate")
    assert attrs(span)[JOB_STEP_STATUS] == "skipped"
    assert span.status.status_code is StatusCode.OK
    assert step.skip_reason == "no pending migrations"
    assert attrs(span)[JOB_STEP_SKIP_REASON] == "no pending migrations"
    assert rec.plain_logs() == []  # skipping adds no log line of its own


def test_a_skipped_step_without_a_reason_sends_none(rec: Recorded) -> None:
    with rec.agent.job("deploy", type="deploy") as job, job.step("notify") as step:
        step.skip()
    assert JOB_STEP_SKIP_REASON not in attrs(rec.span("notify"))


def test_step_fail_with_a_message_fails_the_step_not_the_job(rec: Recorded) -> None:
    with rec.agent.job("import", type="import") as job:
        with job.step("validate") as step:
            step.skip("nothing to check")
            step.fail("3 rows without an id")
            reached = True
        with job.step("load") as loaded:
            pass
    assert reached and step.status == "failed" and loaded.status == "completed"
    assert job.status == "completed"
    span = rec.span("validate")
    assert attrs(span)[JOB_STEP_STATUS] == "failed"
    assert JOB_STEP_SKIP_REASON not in attrs(span)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "3 rows without an id"
    [line] = rec.plain_logs()
    assert line.body == "step 'validate' failed: 3 rows without an id"
    assert line.severity_number.value == 17 and attrs(line)[JOB_STEP] == "validate"


def test_step_fail_with_an_exception_records_it(rec: Recorded) -> None:
    error = ValueError("checksum mismatch")
    with rec.agent.job("import", type="import") as job, job.step("verify") as step:
        step.fail(error)
    assert step.status == "failed"
    span = rec.span("verify")
    assert span.status.status_code is StatusCode.ERROR
    [event] = [e for e in span.events if e.name == "exception"]
    assert event.attributes[EXCEPTION_TYPE] == "ValueError"
    assert event.attributes[EXCEPTION_MESSAGE] == "checksum mismatch"


def test_cancel_marks_job_cancelled(rec: Recorded) -> None:
    with rec.agent.job("backup", type="backup") as job:
        job.cancel("quota reached")
    span = rec.span("backup")
    assert job.status == "cancelled"
    assert attrs(span)[JOB_STATUS] == "cancelled"
    assert attrs(span)[JOB_CANCEL_REASON] == "quota reached"
    assert span.status.status_code is StatusCode.UNSET
    assert rec.plain_logs() == []


def test_keyboard_interrupt_cancels_and_reraises(rec: Recorded) -> None:
    interrupt = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt) as caught:
        with rec.agent.job("long", type="batch") as job:
            raise interrupt
    assert caught.value is interrupt
    assert job.status == "cancelled"
    span_attrs = attrs(rec.span("long"))
    assert span_attrs[JOB_STATUS] == "cancelled"
    assert span_attrs[JOB_CANCEL_REASON] == "KeyboardInterrupt"
    assert not [r for r in rec.plain_logs() if r.severity_text == "ERROR"]


async def test_asyncio_cancellation_cancels_the_job(rec: Recorded) -> None:
    started = asyncio.Event()

    async def worker() -> None:
        async with rec.agent.job("poller", type="poll"):
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(worker())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert attrs(rec.span("poller"))[JOB_STATUS] == "cancelled"
    assert attrs(rec.span("poller"))[JOB_CANCEL_REASON] == "CancelledError"


async def test_async_with_job_and_step(rec: Recorded) -> None:
    async with rec.agent.job("async job", type="async") as job:
        async with job.step("fetch") as step:
            await asyncio.sleep(0)
            assert jobtrail.current_step() is step
            step.info("fetched")
    assert job.status == "completed"
    assert attrs(rec.span("fetch"))[JOB_STEP_SEQ] == 1
    (info,) = rec.plain_logs()
    assert info.span_id == rec.span("fetch").context.span_id


def test_result_is_json(rec: Recorded) -> None:
    with rec.agent.job("a", type="t") as job:
        job.result = "ok"
    with rec.agent.job("b", type="t") as job:
        job.result = {"when": object}
    assert json.loads(attrs(rec.span("a"))[JOB_RESULT]) == "ok"
    assert json.loads(attrs(rec.span("b"))[JOB_RESULT]) == {"when": str(object)}


def test_job_is_single_use(rec: Recorded) -> None:
    job = rec.agent.job("once", type="t")
    with job:
        pass
    with job:
        pass
    assert len(rec.spans()) == 1
    assert rec.agent.stats().internal_errors == 1


def test_enqueue_sends_job_queued_and_the_worker_runs_that_id(rec: Recorded) -> None:
    job_id = rec.agent.enqueue("nightly export", type="export", owner="ops", region="eu")
    assert len(job_id) == 16 and int(job_id, 16) >= 0
    [queued] = rec.events(EVENT_JOB_QUEUED)
    assert attrs(queued) == {
        JOB_ID: job_id,
        JOB_TYPE: "export",
        JOB_NAME: "nightly export",
        JOB_OWNER: "ops",
        JOB_METADATA_PREFIX + "region": "eu",
        "event.name": EVENT_JOB_QUEUED,
    }
    assert queued.trace_id == 0  # the producer's span is not the job's
    with rec.agent.job("nightly export", type="export", id=job_id) as job:
        pass
    assert job.id == job_id and attrs(rec.span("nightly export"))[JOB_ID] == job_id


def test_a_job_enqueued_inside_a_job_is_its_child(rec: Recorded) -> None:
    with rec.agent.job("fan out", type="batch") as parent:
        child_id = rec.agent.enqueue("part 1", type="part", id="part-1", total_steps=3)
    assert child_id == "part-1"
    [queued] = rec.events(EVENT_JOB_QUEUED)
    assert attrs(queued)[JOB_PARENT_ID] == parent.id
    assert attrs(queued)[JOB_TOTAL_STEPS] == 3


def test_enqueue_never_raises_into_the_application(rec: Recorded) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    job_id = rec.agent.enqueue(Unprintable(), type="x")  # type: ignore[arg-type]
    assert len(job_id) == 16
    assert rec.agent.stats().internal_errors >= 1
