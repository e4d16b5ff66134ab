"""stdlib ``logging`` inside jobs becomes OTel log records attached to the job/step."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest

from jobtrail.agent._logging_handler import JobtrailLoggingHandler
from jobtrail.semconv import (
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
    JOB_ID,
    JOB_STEP,
    LOG_CATEGORY,
    LOG_SOURCE,
)

from .conftest import Recorded, attrs, make_recorded

APP_LOGGER = "tests.agent.app"


@pytest.fixture
def captured() -> Iterator[Recorded]:
    rec = make_recorded(capture_logging=True)
    logger = logging.getLogger(APP_LOGGER)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)  # the logger's level filters before any handler
    try:
        yield rec
    finally:
        logger.setLevel(old_level)
        rec.agent.shutdown(timeout_s=1)
    assert not [h for h in logging.getLogger().handlers if isinstance(h, JobtrailLoggingHandler)]


def test_logging_inside_a_step_is_linked(captured: Recorded) -> None:
    log = logging.getLogger(APP_LOGGER)
    with captured.agent.job("import", type="import") as job:
        with job.step("download"):
            log.info("got %d rows", 12, extra={"source": "crm", "meta": {"a": 1}})
        log.warning("after the step")
    step_span = captured.span("download")
    in_step, after = captured.plain_logs()
    assert in_step.body == "got 12 rows"
    assert in_step.severity_number.value == 9 and in_step.severity_text == "INFO"
    assert in_step.span_id == step_span.context.span_id
    assert attrs(in_step) == {
        "source": "crm",
        "meta": '{"a": 1}',
        LOG_CATEGORY: APP_LOGGER,
        JOB_ID: job.id,
        JOB_STEP: "download",
    }
    assert after.severity_text == "WARN"
    assert after.span_id == captured.span("import").context.span_id
    assert attrs(after)[JOB_ID] == job.id and JOB_STEP not in attrs(after)


def test_logging_outside_jobs_is_a_system_log(captured: Recorded) -> None:
    line = sys._getframe().f_lineno + 1
    logging.getLogger(APP_LOGGER).error("disk almost full")
    (record,) = captured.plain_logs()
    assert attrs(record) == {
        LOG_CATEGORY: APP_LOGGER,
        LOG_SOURCE: f"test_logging_capture:{line}",
    }
    assert record.severity_text == "ERROR" and record.span_id == 0


def test_exc_info_becomes_exception_attributes(captured: Recorded) -> None:
    with captured.agent.job("j", type="t"):
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError:
            logging.getLogger(APP_LOGGER).exception("ratio failed")
    (record,) = captured.plain_logs()
    a = attrs(record)
    assert a[EXCEPTION_TYPE] == "ZeroDivisionError"
    assert a[EXCEPTION_MESSAGE] == "division by zero"
    assert "ZeroDivisionError" in a[EXCEPTION_STACKTRACE]
    assert record.severity_text == "ERROR"


def test_internal_loggers_are_not_exported(captured: Recorded) -> None:
    for name in ("jobtrail.agent._stats", "jobtrail.collector", "opentelemetry.sdk.x"):
        logger = logging.getLogger(name)
        old = logger.level
        logger.setLevel(logging.INFO)
        try:
            logger.warning("internal")
        finally:
            logger.setLevel(old)
    assert captured.plain_logs() == []


def test_capture_can_be_disabled(rec: Recorded) -> None:
    assert not [h for h in logging.getLogger().handlers if isinstance(h, JobtrailLoggingHandler)]
    logging.getLogger(APP_LOGGER).error("not captured")
    assert rec.plain_logs() == []


def test_unconfigured_apps_still_see_warnings_on_stderr(
    captured: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    """Our root handler must not silence ``logging.lastResort`` for apps without handlers."""
    (handler,) = [h for h in logging.getLogger().handlers if isinstance(h, JobtrailLoggingHandler)]
    isolated = logging.getLogger("tests.agent.isolated")
    isolated.propagate = False
    isolated.setLevel(logging.INFO)
    isolated.addHandler(handler)  # stands in for "root with only our handler"
    try:
        isolated.warning("visible without any logging config")
        isolated.info("below lastResort's level")
    finally:
        isolated.removeHandler(handler)
        isolated.propagate = True
        isolated.setLevel(logging.NOTSET)
    err = capsys.readouterr().err
    assert "visible without any logging config" in err
    assert "below lastResort" not in err
    assert [r.body for r in captured.plain_logs()] == [
        "visible without any logging config",
        "below lastResort's level",
    ]
