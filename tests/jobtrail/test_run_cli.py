"""``jobtrail run``: argument parsing and an in-process run on in-memory exporters."""

from __future__ import annotations

import sys

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jobtrail._run import run_command
from jobtrail.agent import Agent
from jobtrail.cli import build_parser


def test_parser_takes_everything_after_the_separator() -> None:
    args = build_parser().parse_args(
        ["run", "--type", "backup", "--attr", "a=1", "--attr", "b=x=y", "--", "ls", "-l", "--all"]
    )
    assert args.type == "backup" and args.attr == ["a=1", "b=x=y"]
    assert args.command in (["--", "ls", "-l", "--all"], ["ls", "-l", "--all"])


@pytest.mark.parametrize("argv", [["run"], ["run", "--"], ["run", "--attr", "novalue", "--", "ls"]])
def test_bad_invocations_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(argv)
    with pytest.raises(SystemExit) as exc:
        args.func(args)
    assert exc.value.code == 2


def test_run_command_in_process(capfd: pytest.CaptureFixture[str]) -> None:
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    agent = Agent()
    agent.configure(
        tracer_provider=tracer_provider, logger_provider=logger_provider,
        capture_logging=False, heartbeat_interval_s=0,
    )  # fmt: skip
    program = "import sys; print('out'); print('ERROR: err', file=sys.stderr); sys.exit(4)"
    code = run_command([sys.executable, "-c", program], name="py", attrs={"k": "v"}, agent=agent)
    agent.shutdown(timeout_s=1)
    assert code == 4
    captured = capfd.readouterr()
    assert captured.out == "out\n" and captured.err == "ERROR: err\n"
    (span,) = spans.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert span.name == "py" and attrs["job.type"] == "command"
    assert attrs["job.status"] == "failed" and span.status.description == "exit code 4"
    assert attrs["job.metadata.k"] == "v" and attrs["job.result"] == '{"exit_code": 4}'
    lines = {
        (r.log_record.body, r.log_record.severity_text, r.log_record.attributes["log.iostream"])
        for r in logs.get_finished_logs()
        if r.log_record.attributes and "log.iostream" in r.log_record.attributes
    }
    assert lines == {("out", "INFO", "stdout"), ("ERROR: err", "ERROR", "stderr")}
    with pytest.raises(ValueError):
        run_command([], agent=agent)
