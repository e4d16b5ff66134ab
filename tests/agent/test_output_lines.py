"""Captured output lines: level detection, JSON lines, records of the job."""

from __future__ import annotations

import pytest

from jobtrail.agent._output import OutputRecorder, parse_line
from jobtrail.semconv import EXCEPTION_STACKTRACE, JOB_ID, LOG_IOSTREAM

from .conftest import Recorded, attrs


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("ERROR: disk full", "error"),
        ("error: pathspec did not match", "error"),
        ("ERR something", "error"),
        ("FATAL boom", "fatal"),
        ("CRITICAL:root:boom", "fatal"),
        ("WARN low memory", "warn"),
        ("Warning: deprecated", "warn"),
        ("INFO started", "info"),
        ("DEBUG x=1", "debug"),
        ("[warn] slow", "warn"),
        ("[ERROR] broken", "error"),
        ("<info> hello", "info"),
        ("2024-05-01T12:00:00Z WARN z", "warn"),
        ("2024-05-01 12:00:00,123 ERROR db", "error"),
        ("[2024-05-01 12:00:00] [debug] q", "debug"),
        ("12:00:01.5 FATAL boom", "fatal"),
        ('time="t" level=error msg="a"', "error"),
        ("copied 3 files", None),
        ("Errors are fine in prose", None),
        ("information leak", None),
        ("ERR_CONNECTION_REFUSED", None),
        ("", None),
    ],
)
def test_level_from_prefix(line: str, level: str | None) -> None:
    assert parse_line(line).level == level


def test_json_lines() -> None:
    parsed = parse_line('{"level": "warning", "msg": "slow", "ms": 950, "tags": ["a"]}')
    assert (parsed.level, parsed.message, parsed.data) == ("warn", "slow", {"ms": 950, "tags": ["a"]})
    pino = parse_line('{"level": 50, "time": 1, "message": "pino error"}')
    assert (pino.level, pino.message, pino.data) == ("error", "pino error", {"time": 1})
    no_message = parse_line('{"a": 1}')
    assert (no_message.level, no_message.message) == (None, '{"a": 1}')
    stack = parse_line('{"msg": "x", "stack_trace": "Traceback..."}')
    assert stack.stack_trace == "Traceback..." and stack.data == {}
    assert parse_line("[1, 2]").message == "[1, 2]"
    assert parse_line("{not json}").data == {}


def test_recorder_emits_job_records(rec: Recorded) -> None:
    with rec.agent.job("cmd", type="command") as job:
        out = OutputRecorder(job, "stdout")
        err = OutputRecorder(job, "stderr")
        out.record(b"hello\n")
        err.record(b'{"level": "error", "msg": "bad", "job.id": "forged", "n": {"a": 1}}\r\n')
        err.record(b'{"msg": "trace", "stack": "Traceback (most recent call last)"}')
        out.record(b"\xff invalid utf-8")
    hello, bad, traced, invalid = rec.plain_logs()
    assert hello.body == "hello" and hello.severity_text == "INFO"
    assert attrs(hello) == {LOG_IOSTREAM: "stdout", JOB_ID: job.id}
    assert hello.span_id == job.span.get_span_context().span_id
    assert bad.body == "bad" and bad.severity_text == "ERROR"
    assert attrs(bad) == {"n": '{"a": 1}', LOG_IOSTREAM: "stderr", JOB_ID: job.id}
    assert attrs(traced)[EXCEPTION_STACKTRACE] == "Traceback (most recent call last)"
    assert invalid.body == "\ufffd invalid utf-8"
    assert (out.lines, err.lines) == (2, 2)
