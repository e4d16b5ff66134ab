"""``jobtrail run -- CMD ARGS...``: run any program as a job, its output as the job's logs.

The wrapper starts the job, runs the program with ``TRACEPARENT``/``JOBTRAIL_PARENT_JOB_ID``
(and the ``OTEL_*`` endpoint) in its environment so an instrumented child joins the job's
trace and its jobs become child jobs, and reads stdout and stderr on one thread each. Every
line is echoed unchanged to the wrapper's own stdout/stderr (cron mails and CI logs look
the same) and recorded as a log record with ``log.iostream``. The exit code or signal
decides the job's status, and the wrapper exits with the child's code (``128 + N`` when the
child was killed by signal N). SIGINT and SIGTERM sent to the wrapper are forwarded to the
child and end the job as ``cancelled``.

Memory stays bounded with a chatty child: lines are handled one at a time, and when the
exporter falls behind the readers pause (the child then blocks on its full pipe) instead
of letting the export queue overflow and drop lines.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # the agent (OTel SDK) is imported when a command runs, not by the CLI
    from jobtrail.agent import Agent, Job
    from jobtrail.agent._output import OutputRecorder

__all__ = ["add_run_parser", "run_command"]

_logger = logging.getLogger(__name__)

_DEFAULT_TYPE = "command"
_MAX_NAME_CHARS = 120
#: A longer line is recorded in pieces of this size (and still echoed unchanged).
_MAX_LINE_BYTES = 64 * 1024
_READ_BYTES = 64 * 1024
#: Records queued but not yet exported above which the readers pause.
_MAX_IN_FLIGHT = 10_000
_BACKPRESSURE_CHECK_EVERY = 256
#: Give up waiting on the exporter (and let the queue drop) after this long without progress.
_EXPORT_STALL_S = 2.0
#: After the child exited, keep reading pipes a grandchild holds open while lines still come.
_PIPE_IDLE_S = 2.0
_SHUTDOWN_TIMEOUT_S = 10.0
_DEAD_COLLECTOR_SHUTDOWN_S = 0.5
_FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_EXIT_NOT_FOUND = 127
_EXIT_NOT_EXECUTABLE = 126


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class _Backpressure:
    """Pause readers while more than ``_MAX_IN_FLIGHT`` records wait for export."""

    def __init__(self, agent: Agent) -> None:
        self._agent = agent
        self._lock = threading.Lock()
        self._emitted = 0
        self._stalled = False

    def _done(self) -> int:
        stats = self._agent.stats()
        return int(stats.logs_exported + stats.logs_export_failed + stats.logs_dropped)

    def admit(self) -> None:
        with self._lock:
            self._emitted += 1
            if self._emitted % _BACKPRESSURE_CHECK_EVERY or self._stalled:
                return
            done = self._done()
            progress_at = time.monotonic()
            while self._emitted - done > _MAX_IN_FLIGHT:
                time.sleep(0.005)
                now_done = self._done()
                if now_done != done:
                    done, progress_at = now_done, time.monotonic()
                elif time.monotonic() - progress_at > _EXPORT_STALL_S:
                    self._stalled = True  # the collector is gone: stop waiting on it
                    return


class _Pump(threading.Thread):
    """Copy one pipe of the child to our own stream, recording every line."""

    def __init__(
        self, pipe: IO[bytes], echo: IO[Any], recorder: OutputRecorder, gate: _Backpressure
    ) -> None:
        super().__init__(name=f"jobtrail-run-{recorder.stream}", daemon=True)
        self._pipe = pipe
        self._echo: IO[Any] | None = echo
        self._recorder = recorder
        self._gate = gate
        self.last_activity = time.monotonic()

    def run(self) -> None:
        # Whole chunks, not lines: one read and one echo per chunk keep the GIL handoffs
        # (each costs up to a switch interval while the exporter encodes) off the per-line path.
        fd = self._pipe.fileno()
        binary = getattr(self._echo, "buffer", None)
        pending = b""
        while chunk := os.read(fd, _READ_BYTES):
            self.last_activity = time.monotonic()
            self._write(chunk, binary)
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                self._record(line)
            while len(pending) >= _MAX_LINE_BYTES:
                self._record(pending[:_MAX_LINE_BYTES])
                pending = pending[_MAX_LINE_BYTES:]
        if pending:
            self._record(pending)

    def _record(self, line: bytes) -> None:
        self._recorder.record(line)
        self._gate.admit()
        self.last_activity = time.monotonic()

    def _write(self, chunk: bytes, binary: IO[bytes] | None) -> None:
        if self._echo is None:
            return
        try:
            if binary is not None:
                binary.write(chunk)
                binary.flush()
            else:  # a text-only stream (tests capturing sys.stdout)
                self._echo.write(chunk.decode("utf-8", "replace"))
                self._echo.flush()
        except (OSError, ValueError):  # our own output is gone (closed pipe): keep recording
            self._echo = None


def _in_foreground_of_terminal() -> bool:
    """Whether a terminal's Ctrl-C reaches our whole process group (child included)."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError, AttributeError):
        return False


@contextmanager
def _forwarding_signals(holder: list[subprocess.Popen[bytes]]) -> Iterator[list[int]]:
    """Forward SIGINT/SIGTERM to the child in ``holder``; yield the signals received."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def forward(signum: int, _frame: Any) -> None:
        received.append(signum)
        if signum == signal.SIGINT and _in_foreground_of_terminal():
            return  # the terminal already sent Ctrl-C to the child too
        for proc in holder:
            with suppress(ProcessLookupError, OSError):
                proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in _FORWARDED_SIGNALS}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _child_env(job: Job, endpoint: str | None) -> dict[str, str]:
    from jobtrail.agent._propagation import child_environment

    env = dict(os.environ)
    env.update(child_environment(job.span, job.id))
    if endpoint:  # what the wrapper exports to, the child exports to
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint if "://" in endpoint else f"http://{endpoint}"
        env.setdefault("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    return env


def _join_pumps(pumps: Sequence[_Pump]) -> None:
    """Wait for the pumps to drain; stop waiting on pipes a grandchild keeps idle."""
    for pump in pumps:
        while pump.is_alive():
            pump.join(0.2)
            if time.monotonic() - pump.last_activity > _PIPE_IDLE_S:
                break


def _run_child(job: Job, argv: Sequence[str], env: Mapping[str, str], agent: Agent) -> int:
    """Run the child under ``job``; set the job's outcome; return the wrapper's exit code."""
    from jobtrail.agent._output import OutputRecorder

    holder: list[subprocess.Popen[bytes]] = []
    with _forwarding_signals(holder) as received:
        try:
            proc = subprocess.Popen(
                list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(env)
            )
        except OSError as exc:
            message = f"cannot run {argv[0]!r}: {exc.strerror or exc}"
            print(f"jobtrail: {message}", file=sys.stderr)
            job.fail(message)
            return _EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else _EXIT_NOT_EXECUTABLE
        holder.append(proc)
        for signum in received:  # arrived while starting
            with suppress(OSError):
                proc.send_signal(signum)
        gate = _Backpressure(agent)
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [
            _Pump(proc.stdout, sys.stdout, OutputRecorder(job, "stdout"), gate),
            _Pump(proc.stderr, sys.stderr, OutputRecorder(job, "stderr"), gate),
        ]
        for pump in pumps:
            pump.start()
        code = proc.wait()
        _join_pumps(pumps)
    job.result = {"exit_code": code}
    if received:
        job.cancel(f"received {_signal_name(received[0])}")
    elif code > 0:
        job.fail(f"exit code {code}")
    elif code < 0:
        job.fail(f"killed by {_signal_name(-code)}")
    return code if code >= 0 else 128 - code


def run_command(
    argv: Sequence[str],
    *,
    type: str | None = None,
    name: str | None = None,
    attrs: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
    agent: Agent | None = None,
) -> int:
    """Run ``argv`` as a job and return the exit code the wrapper should exit with.

    Args:
        argv: The program and its arguments.
        type: Job type (default ``command``).
        name: Job name (default: the command line, shortened).
        attrs: Job metadata (``job.metadata.<key>``).
        endpoint: OTLP endpoint for the wrapper and the child (default from ``OTEL_*``).
        agent: Record through this agent (default: a private one, shut down at the end).

    Raises:
        ValueError: ``argv`` is empty.

    Example:
        >>> run_command(["sh", "-c", "echo hello"], type="demo")  # doctest: +SKIP
        0
    """
    from jobtrail.agent import Agent
    from jobtrail.agent._encode import truncate_middle

    if not argv:
        raise ValueError("no command to run")
    command = shlex.join(argv)
    own_agent = agent is None
    if agent is None:
        agent = Agent(console_fallback=False)
        service = None
        named = "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
        if "OTEL_SERVICE_NAME" not in os.environ and not named:
            service = os.path.basename(argv[0]) or "jobtrail-run"
        agent.configure(endpoint=endpoint, service_name=service, capture_logging=False)
        if agent.stats().endpoint_reachable is False:  # warned once; spare cron the retries
            logging.getLogger("opentelemetry.exporter").setLevel(logging.CRITICAL)
    metadata = {"command": command, **dict(attrs or {})}
    job_name = name or truncate_middle(command, _MAX_NAME_CHARS)
    try:
        with agent.job(job_name, type=type or _DEFAULT_TYPE, **metadata) as job:
            return _run_child(job, argv, _child_env(job, endpoint), agent)
    finally:
        if own_agent:
            timeout_s = _SHUTDOWN_TIMEOUT_S
            if agent.stats().endpoint_reachable is False:
                timeout_s = _DEAD_COLLECTOR_SHUTDOWN_S
            agent.shutdown(timeout_s)


def _parse_attrs(pairs: Sequence[str]) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--attr wants KEY=VALUE, got {pair!r}")
        attrs[key.strip()] = value
    return attrs


def _cmd_run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        args.run_parser.error("no command given (jobtrail run [options] -- CMD ARGS...)")
    try:
        attrs = _parse_attrs(args.attr)
    except ValueError as exc:
        args.run_parser.error(str(exc))
    return run_command(command, type=args.type, name=args.name, attrs=attrs, endpoint=args.endpoint)


def add_run_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``run`` command to the ``jobtrail`` CLI's subparsers; return its parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="run a command as a job, its output as the job's logs",
        description=(
            "Run CMD as a job: every stdout/stderr line becomes a log record (and is echoed "
            "unchanged), the exit code decides the status, and the wrapper exits with it."
        ),
        usage="jobtrail run [--type T] [--name N] [--attr KEY=VALUE ...] [--endpoint URL] "
        "-- CMD [ARGS...]",
    )
    p.add_argument("--type", help=f"job type (default {_DEFAULT_TYPE!r})")
    p.add_argument("--name", help="job name (default: the command line)")
    p.add_argument(
        "--attr", action="append", default=[], metavar="KEY=VALUE", help="job metadata (repeat)"
    )
    p.add_argument("--endpoint", help="OTLP endpoint (default from OTEL_EXPORTER_OTLP_ENDPOINT)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")
    p.set_defaults(func=_cmd_run, run_parser=p)
    return p
