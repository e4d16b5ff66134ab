"""Job/step log records, progress and heartbeats."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from jobtrail.agent._encode import truncate_middle
from jobtrail.agent._output import OutputRecorder
from jobtrail.semconv import (
    EVENT_JOB_HEARTBEAT,
    EVENT_JOB_PROGRESS,
    EVENT_JOB_STARTED,
    EVENT_STEP_STARTED,
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
    JOB_CURRENT_STEP,
    JOB_ID,
    JOB_NAME,
    JOB_PROGRESS,
    JOB_STEP,
    JOB_STEP_STATUS,
    JOB_TYPE,
    SEVERITY_BY_LEVEL,
)

from .conftest import Recorded, attrs, make_recorded


def test_levels_severity_and_linkage(rec: Recorded) -> None:
    with rec.agent.job("levels", type="t") as job:
        job.debug("d")
        job.info("i", count=3)
        job.success("s")
        job.warn("w")
        job.error("e")
        job.fatal("f")
        job.log("warning", "alias")
        job.log("nonsense", "unknown level")
        with job.step("inner") as step:
            step.info("from step", ok=True)
    records = rec.plain_logs()
    assert [(r.body, r.severity_number.value, r.severity_text) for r in records] == [
        ("d", 5, "DEBUG"),
        ("i", 9, "INFO"),
        ("s", 10, "SUCCESS"),
        ("w", 13, "WARN"),
        ("e", 17, "ERROR"),
        ("f", 21, "FATAL"),
        ("alias", 13, "WARN"),
        ("unknown level", 9, "INFO"),
        ("from step", 9, "INFO"),
    ]
    assert SEVERITY_BY_LEVEL["success"] == 10
    job_span, step_span = rec.span("levels"), rec.span("inner")
    assert attrs(records[1]) == {JOB_ID: job.id, "count": 3}
    for record in records[:-1]:
        assert record.span_id == job_span.context.span_id
        assert record.trace_id == job_span.context.trace_id
        assert JOB_STEP not in attrs(record)
    assert records[-1].span_id == step_span.context.span_id
    assert attrs(records[-1]) == {JOB_ID: job.id, JOB_STEP: "inner", "ok": True}


def test_data_encoding_and_middle_truncation() -> None:
    rec = make_recorded(max_data_len=32)
    try:
        with rec.agent.job("data", type="t") as job:
            job.info(
                "payload",
                text="x" * 20 + "y" * 40,
                obj={"a": [1, 2]},
                n=1.5,
                flag=False,
                huge=2**70,
                none=None,
                message="a data key may be called message",
            )
    finally:
        rec.agent.shutdown(timeout_s=1)
    (record,) = rec.plain_logs()
    a = attrs(record)
    assert a["text"] == "x" * 13 + " ... " + "y" * 13
    assert a["text"] == truncate_middle("x" * 20 + "y" * 40, 32)
    assert a["obj"] == '{"a": [1, 2]}'
    assert a["n"] == 1.5 and a["flag"] is False
    assert a["huge"] == str(2**70)
    assert a["none"] == "null"
    assert a["message"] == "a data key may be called message"
    assert record.body == "payload"


def test_error_and_fatal_capture_stack_traces(rec: Recorded) -> None:
    with rec.agent.job("stacks", type="t") as job:
        job.error("no exception active")
        try:
            raise KeyError("missing")
        except KeyError:
            job.fatal("while handling")
        job.error("explicit", exc=RuntimeError("given"))
        job.log("warn", "warn with exc", exc=OSError("disk"))
        job.info("plain")
    plain, handling, explicit, warn, info = rec.plain_logs()
    a = attrs(plain)
    assert EXCEPTION_TYPE not in a
    assert a[EXCEPTION_STACKTRACE].startswith("Stack (most recent call last):")
    assert "test_error_and_fatal_capture_stack_traces" in a[EXCEPTION_STACKTRACE]
    assert "jobtrail/agent" not in a[EXCEPTION_STACKTRACE].replace("\\", "/")
    a = attrs(handling)
    assert a[EXCEPTION_TYPE] == "KeyError" and a[EXCEPTION_MESSAGE] == "'missing'"
    assert 'raise KeyError("missing")' in a[EXCEPTION_STACKTRACE]
    assert attrs(explicit)[EXCEPTION_TYPE] == "RuntimeError"
    assert attrs(explicit)[EXCEPTION_MESSAGE] == "given"
    assert attrs(warn)[EXCEPTION_TYPE] == "OSError"
    assert EXCEPTION_STACKTRACE not in attrs(info)


def test_progress_records_are_clamped(rec: Recorded) -> None:
    with rec.agent.job("progress", type="t") as job:
        job.progress(42.5, step="fetching data")
        job.progress(150)
        job.progress(-3)
        assert job.percent == 0.0
        job.progress(float("nan"))  # ignored and counted, never raised
    records = rec.events(EVENT_JOB_PROGRESS)
    assert [attrs(r)[JOB_PROGRESS] for r in records] == [42.5, 100.0, 0.0]
    first = records[0]
    assert first.event_name == EVENT_JOB_PROGRESS and first.body == "progress 42.5%: fetching data"
    assert attrs(first) == {
        "event.name": EVENT_JOB_PROGRESS,
        JOB_ID: job.id,
        JOB_TYPE: "t",
        JOB_NAME: "progress",
        JOB_PROGRESS: 42.5,
        JOB_CURRENT_STEP: "fetching data",
    }
    assert first.span_id == rec.span("progress").context.span_id
    assert rec.agent.stats().internal_errors == 1


def test_total_steps_drive_progress(rec: Recorded) -> None:
    with rec.agent.job("four steps", type="t", total_steps=4) as job:
        with job.step("one"):
            pass
        with job.step("two") as step:
            step.skip()
        with pytest.raises(RuntimeError):
            with job.step("three"):
                raise RuntimeError("step failure does not advance progress")
        with job.step("four"):
            pass
    progress = [
        (attrs(r)[JOB_PROGRESS], attrs(r)[JOB_CURRENT_STEP]) for r in rec.events(EVENT_JOB_PROGRESS)
    ]
    assert progress == [(25.0, "one"), (50.0, "two"), (75.0, "four")]


def test_heartbeats_for_running_jobs() -> None:
    rec = make_recorded(heartbeat_interval_s=0.02)
    try:
        with rec.agent.job("slow", type="t") as job:
            deadline = time.monotonic() + 2
            while not rec.events(EVENT_JOB_HEARTBEAT) and time.monotonic() < deadline:
                time.sleep(0.01)
        beats = rec.events(EVENT_JOB_HEARTBEAT)
        assert beats
        assert attrs(beats[0])[JOB_ID] == job.id
        assert beats[0].span_id == rec.span("slow").context.span_id
        count = len(rec.events(EVENT_JOB_HEARTBEAT))
        time.sleep(0.08)
        assert len(rec.events(EVENT_JOB_HEARTBEAT)) == count  # finished jobs stop beating
    finally:
        rec.agent.shutdown(timeout_s=1)


def _wait_for(found: Callable[[], list[Any]], limit_s: float = 2.0) -> float:
    """Seconds until ``found()`` returned something (bounded)."""
    started = time.monotonic()
    while not found() and time.monotonic() - started < limit_s:
        time.sleep(0.01)
    return time.monotonic() - started


def test_lifecycle_records_wait_a_moment_and_quick_work_needs_none() -> None:
    """Quick steps cost their spans alone; a long step or a pause is still seen promptly."""
    rec = make_recorded(heartbeat_interval_s=30)
    try:
        with rec.agent.job("quick", type="t", total_steps=4) as job:
            for name in ("one", "two"):
                with job.step(name):
                    pass
            entered = time.time_ns()
            with job.step("three"):
                waited = _wait_for(lambda: rec.events(EVENT_STEP_STARTED))
                (started,) = rec.events(EVENT_STEP_STARTED)  # only the step still running
                assert attrs(started)[JOB_STEP] == "three" and waited < 1.0
                assert attrs(started)[JOB_PROGRESS] == 50.0  # the steps before it, carried
                assert entered <= started.timestamp <= entered + int(0.1e9)  # when it began
                (job_started,) = rec.events(EVENT_JOB_STARTED)  # the job runs on: announced
                assert job_started.timestamp < entered
            assert rec.events(EVENT_JOB_PROGRESS) == []
            waited = _wait_for(lambda: rec.events(EVENT_JOB_PROGRESS))  # nothing runs now
            progress = [
                (attrs(r)[JOB_PROGRESS], attrs(r)[JOB_CURRENT_STEP])
                for r in rec.events(EVENT_JOB_PROGRESS)
            ]
            assert progress == [(75.0, "three")] and waited < 1.0
            with job.step("four"):
                pass
        time.sleep(0.5)  # the job ended: its span carries 100%, no late record follows
        assert len(rec.events(EVENT_JOB_PROGRESS)) == 1
        assert len(rec.events(EVENT_STEP_STARTED)) == 1
        assert attrs(rec.span("quick"))[JOB_PROGRESS] == 100.0
        with rec.agent.job("instant", type="t") as job:
            with job.step("only"):
                pass
        time.sleep(0.5)
        assert len(rec.events(EVENT_JOB_STARTED)) == 1  # still only the long job's
        assert len(rec.events(EVENT_STEP_STARTED)) == 1
        assert attrs(rec.span("only"))[JOB_STEP_STATUS] == "completed"
    finally:
        rec.agent.shutdown(timeout_s=1)


def test_force_flush_sends_lifecycle_records_still_waiting() -> None:
    rec = make_recorded(heartbeat_interval_s=30)
    try:
        with rec.agent.job("flushed", type="t") as job:
            with job.step("load"):
                assert rec.agent.force_flush(timeout_s=1)
                assert [attrs(r)[JOB_ID] for r in rec.events(EVENT_JOB_STARTED)] == [job.id]
                assert [attrs(r)[JOB_STEP] for r in rec.events(EVENT_STEP_STARTED)] == ["load"]
    finally:
        rec.agent.shutdown(timeout_s=1)


def test_min_level_drops_application_records_below_it() -> None:
    """Below ``min_level`` nothing is sent from log calls, logging libraries or captured
    output; lifecycle records and the records of failed steps still are."""

    rec = make_recorded(min_level="warn", capture_logging=True, heartbeat_interval_s=0)
    app = logging.getLogger("tests.min_level")
    app.setLevel(logging.DEBUG)
    try:
        with rec.agent.job("quiet", type="t") as job:
            job.debug("d")
            job.info("i")
            job.success("s")
            job.warn("w")
            job.log("error", "e")
            app.info("library info")
            app.warning("library warning")
            OutputRecorder(job, "stdout").record(b"plain output line\n")
            OutputRecorder(job, "stderr").record(b"ERROR: output error\n")
            job.progress(50)
            try:
                with job.step("parse"):
                    raise ValueError("bad row")
            except ValueError:
                pass
        bodies = [r.body for r in rec.plain_logs()]
        assert bodies == [
            "w",
            "e",
            "library warning",
            "ERROR: output error",
            "step 'parse' failed: ValueError: bad row",
        ]
        assert rec.events(EVENT_JOB_PROGRESS)
    finally:
        rec.agent.shutdown(timeout_s=1)
