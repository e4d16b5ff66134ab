"""Celery tasks are jobs: a real worker process against a real server, and eager tasks in process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("celery")

from celery import Celery, signals  # noqa: E402
from e2e.harness import ServerProcess  # noqa: E402
from integration_support import APPS, all_logs, app_env  # noqa: E402
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

import jobtrail  # noqa: E402
from jobtrail.agent import Agent  # noqa: E402
from jobtrail.agent.integrations import celery as celery_integration  # noqa: E402
from jobtrail.agent.integrations.celery import (  # noqa: E402
    PARENT_JOB_HEADER,
    TRACEPARENT_HEADER,
    instrument_celery,
)

WORKER_TIMEOUT_S = 30


@pytest.fixture
def broker_dir(tmp_path: Path) -> Path:
    path = tmp_path / "broker"
    path.mkdir()
    return path


@dataclass
class Worker:
    """A ``celery worker`` process; its output goes to a file (a pipe could fill up)."""

    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), which must exit 0."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(WORKER_TIMEOUT_S)
        assert code == 0, self.log.read_text()

    def kill(self) -> None:
        """SIGKILL the worker and its pool children (its own process group)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def start_worker(server: ServerProcess, broker_dir: Path, pool: str, **extra_env: str) -> Worker:
    env = app_env(server, f"celery-{pool}", JOBTRAIL_TEST_CELERY_DIR=str(broker_dir), **extra_env)
    env["PYTHONPATH"] = str(APPS)
    log = broker_dir.parent / f"worker-{pool}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "celery_app", "worker", f"--pool={pool}",
             "--concurrency=1", "--loglevel=WARNING", "--without-heartbeat", "--without-mingle",
             "--without-gossip", "--hostname", f"{pool}@test"],
            cwd=APPS, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return Worker(proc, log)


def publish(server: ServerProcess, broker_dir: Path, *args: str) -> dict[str, str]:
    env = app_env(server, "celery-producer", JOBTRAIL_TEST_CELERY_DIR=str(broker_dir))
    env["PYTHONPATH"] = str(APPS)
    done = subprocess.run(
        [sys.executable, str(APPS / "celery_producer.py"), *args], env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    ids: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return ids


@pytest.fixture
def worker_factory(server: ServerProcess, broker_dir: Path) -> Iterator[Any]:
    workers: list[Worker] = []

    def start(pool: str, **extra_env: str) -> Worker:
        worker = start_worker(server, broker_dir, pool, **extra_env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.kill()


def wait_job(
    server: ServerProcess, worker: Worker, job_id: str, status: str, attempts: int = 1
) -> Any:
    try:
        return server.wait_for(
            f"/api/jobs/{job_id}",
            lambda j: j["status"] == status and len(j["attempts"] or []) >= attempts,
            timeout_s=WORKER_TIMEOUT_S,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nworker log:\n{worker.log.read_text()[-6000:]}") from None


@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_celery_tasks_are_jobs(
    server: ServerProcess, broker_dir: Path, worker_factory: Any, pool: str
) -> None:
    worker = worker_factory(pool)
    ids = publish(server, broker_dir)

    imported = wait_job(server, worker, ids["import"], "completed")
    flaky = wait_job(server, worker, ids["flaky"], "completed", attempts=3)
    hopeless = wait_job(server, worker, ids["hopeless"], "failed", attempts=2)
    broken = wait_job(server, worker, ids["broken"], "failed")
    worker.stop()

    # A task published inside a job is its child job, in its trace.
    producer = server.get(f"/api/jobs/{ids['producer']}")
    assert imported["type"] == imported["name"] == "celery_app.import_rows"
    assert imported["parent_job_id"] == ids["producer"]
    assert imported["trace_id"] == producer["trace_id"]
    assert imported["result"] == {"rows": 120} and imported["attempt"] == 1
    # Publishing queued it: pending from then until the worker took it.
    assert imported["queued_at"] is not None and imported["queued_at"] <= imported["started_at"]
    assert flaky["queued_at"] is not None and broken["queued_at"] is not None
    assert imported["attributes"]["queue"] == "celery"
    assert imported["attributes"]["worker"] == f"{pool}@test"
    assert [(s["name"], s["status"]) for s in imported["steps"]] == [
        ("download", "completed"),
        ("store", "completed"),
    ]
    logs = {e["message"]: e for e in all_logs(server, ids["import"])}
    assert logs["importing 120 rows"]["level"] == "info"
    assert logs["importing 120 rows"]["category"] == "celery_app"
    assert logs["importing 120 rows"]["step"] is None
    assert logs["fetched"]["step"] == "download" and logs["fetched"]["data"]["rows"] == 120
    assert logs["slow store"]["step"] == "store" and logs["slow store"]["level"] == "warn"
    assert logs["slow store"]["data"]["table"] == "users"

    # Retries are attempts of one job: same id, attempt numbers 1..3.
    assert flaky["attempt"] == 3 and flaky["parent_job_id"] is None
    assert [a["status"] for a in flaky["attempts"]] == ["failed", "failed", "completed"]
    assert [a["attempt"] for a in flaky["attempts"]] == [1, 2, 3]
    assert "upstream timed out (try 1)" in flaky["attempts"][0]["error"]
    assert flaky["attempts"][1]["error_type"] == "TimeoutError"
    assert flaky["result"] == "synced" and flaky["error"] is None
    flaky_logs = [e["message"] for e in all_logs(server, ids["flaky"])]
    assert {f"sync attempt {n}" for n in (1, 2, 3)} <= set(flaky_logs)

    assert [a["status"] for a in hopeless["attempts"]] == ["failed", "failed"]
    assert hopeless["error_type"] == "ConnectionError" and "broker refused" in hopeless["error"]

    # A failure keeps its exception and stack trace; the step it happened in failed too.
    assert broken["error_type"] == "ValueError" and "bad row '7;x'" in broken["error"]
    assert "parse_row" in broken["stack_trace"] and "Traceback" in broken["stack_trace"]
    assert [(s["name"], s["status"]) for s in broken["steps"]] == [("parse", "failed")]
    errors = [e for e in all_logs(server, ids["broken"]) if e["level"] == "error"]
    by_category = {e["category"]: e for e in errors if e["step"] is None}
    failed = by_category[None]  # the agent's record of the failure, then Celery's own log
    assert failed["message"] == "job failed: ValueError: bad row '7;x'"
    assert failed["exception_type"] == "ValueError" and "parse_row" in failed["stack_trace"]
    assert "raised unexpected" in by_category["celery.app.trace"]["message"]


def test_a_worker_child_killed_under_its_task_fails_the_job(
    server: ServerProcess, broker_dir: Path, worker_factory: Any
) -> None:
    # The task's span dies with the child; the main worker process records the failure.
    worker = worker_factory("prefork")
    killed = publish(server, broker_dir, "kill")
    crashed = wait_job(server, worker, killed["crash"], "failed")
    stuck = wait_job(server, worker, killed["stuck"], "failed")
    # No warm shutdown after a hard time limit: billiard's pool can then block in it when
    # the killed child ran threads (seen with a plain Celery app too); the jobs are recorded.
    worker.kill()
    assert crashed["error_type"].endswith("WorkerLostError") and "SIGKILL" in crashed["error"]
    assert [a["status"] for a in crashed["attempts"]] == ["failed"]
    assert crashed["attributes"]["worker"] == "prefork@test"
    assert stuck["error_type"].endswith("TimeLimitExceeded")


def test_a_stopping_worker_child_flushes_its_jobs(
    server: ServerProcess, broker_dir: Path, worker_factory: Any
) -> None:
    # Spans wait a minute in the batch: only the flush at shutdown can send them in time
    # (prefork children leave through os._exit, skipping atexit).
    worker = worker_factory("prefork", JOBTRAIL_SPAN_EXPORT_DELAY_MS="60000")
    job_id = publish(server, broker_dir, "import")["import"]
    server.wait_for(
        "/api/logs",
        lambda page: any(r["job_id"] == job_id for r in page["logs"]),  # the task's last log
        timeout_s=WORKER_TIMEOUT_S,
        q="slow store",
    )
    # Its spans are still in the batch; a task this quick sends no lifecycle records either
    # (the agent waits 0.2 s for them), so the job is not there yet, or not finished.
    status, body = server.get_status(f"/api/jobs/{job_id}")
    assert status == 404 or body["status"] != "completed", body
    worker.stop()
    done = wait_job(server, worker, job_id, "completed")
    assert done["result"] == {"rows": 5} and [s["status"] for s in done["steps"]] == [
        "completed",
        "completed",
    ]


# -- in process: eager tasks on an agent with in-memory exporters ------------------------


@pytest.fixture
def recorded() -> Iterator[tuple[Any, InMemorySpanExporter]]:
    spans = InMemorySpanExporter()
    agent = Agent()
    agent.configure(
        span_exporter=spans, log_exporter=InMemoryLogRecordExporter(), capture_logging=False,
        heartbeat_interval_s=0, span_export_delay_ms=10, log_export_delay_ms=10,
    )  # fmt: skip
    yield agent, spans
    agent.shutdown()


@pytest.fixture
def eager_app() -> Iterator[Celery]:
    app = Celery("eager_app", broker="memory://")
    app.conf.update(task_store_eager_result=False, broker_connection_retry_on_startup=True)
    yield app
    instrumentations = [i for i in list(celery_integration._INSTRUMENTED.values()) if i.app is app]
    for instrumentation in instrumentations:
        instrumentation.uninstrument()


def job_spans(agent: Any, spans: InMemorySpanExporter) -> list[Any]:
    agent.force_flush()
    return [s for s in spans.get_finished_spans() if "job.type" in (s.attributes or {})]


def test_eager_retries_are_attempts_of_one_job(recorded: Any, eager_app: Celery) -> None:
    agent, spans = recorded
    instrumentation = instrument_celery(eager_app, agent=agent, job_type="sync", capture_logs=False)
    assert instrument_celery(eager_app, agent=agent) is instrumentation  # idempotent

    @eager_app.task(bind=True, max_retries=2)
    def sync(self: Any) -> int:
        if self.request.retries < 2:
            raise self.retry(exc=TimeoutError(f"try {self.request.retries + 1}"), countdown=0)
        return 7

    result = sync.apply()
    assert result.get() == 7
    attempts = sorted(job_spans(agent, spans), key=lambda s: s.attributes["job.attempt"])
    assert [s.attributes["job.attempt"] for s in attempts] == [1, 2, 3]
    assert {s.attributes["job.id"] for s in attempts} == {result.id}
    assert [s.attributes.get("job.will_retry") for s in attempts] == [True, True, None]
    assert [s.attributes["job.status"] for s in attempts] == ["failed", "failed", "completed"]
    assert attempts[0].status.description == "TimeoutError: try 1"
    assert (
        attempts[-1].attributes["job.result"] == "7"
        and attempts[-1].attributes["job.type"] == "sync"
    )


def test_a_broken_integration_never_raises_into_the_task(recorded: Any, eager_app: Celery) -> None:
    agent, spans = recorded

    def bad_type(task: Any) -> str:
        raise RuntimeError("job_type callback broke")

    instrument_celery(eager_app, agent=agent, job_type=bad_type, capture_logs=False)

    @eager_app.task
    def add(a: int, b: int) -> int:
        return a + b

    before = agent.stats().internal_errors
    assert add.apply((2, 3)).get() == 5
    assert agent.stats().internal_errors > before
    assert job_spans(agent, spans) == []


def test_tasks_published_inside_a_job_name_it(recorded: Any, eager_app: Celery) -> None:
    agent, _ = recorded
    instrument_celery(eager_app, agent=agent, capture_logs=False)
    seen: list[dict[str, Any]] = []

    def keep_headers(headers: Any = None, **_: Any) -> None:
        seen.append(dict(headers))

    @eager_app.task
    def noop() -> None:
        pass

    signals.after_task_publish.connect(keep_headers, weak=False)
    try:
        noop.apply_async()
        with agent.job("publisher", type="web") as job:
            noop.apply_async()
    finally:
        signals.after_task_publish.disconnect(keep_headers)
    outside, inside = seen
    assert PARENT_JOB_HEADER not in outside and TRACEPARENT_HEADER not in outside
    assert inside[PARENT_JOB_HEADER] == job.id
    trace_id = format(job.span.get_span_context().trace_id, "032x")
    assert inside[TRACEPARENT_HEADER].split("-")[1] == trace_id


def test_a_task_joins_the_job_its_headers_name(recorded: Any, eager_app: Celery) -> None:
    agent, spans = recorded
    instrument_celery(eager_app, agent=agent, capture_logs=False)

    @eager_app.task
    def step_task() -> None:
        job = jobtrail.current_job()
        assert job is not None
        with job.step("work"):
            pass

    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    step_task.apply(headers={PARENT_JOB_HEADER: "web-42", TRACEPARENT_HEADER: parent})
    step_task.apply()  # the next task in this thread is not the web job's child
    child, alone = sorted(job_spans(agent, spans), key=lambda s: s.start_time)
    assert child.attributes["job.parent_id"] == "web-42"
    assert format(child.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert format(child.parent.span_id, "016x") == "b7ad6b7169203331"
    assert "job.parent_id" not in alone.attributes and alone.parent is None
    under_child = [
        s
        for s in spans.get_finished_spans()
        if s.parent and s.parent.span_id == child.context.span_id
    ]
    assert [s.name for s in under_child] == ["work"]
    assert jobtrail.current_job() is None


def test_publishing_queues_the_job_only_where_the_agent_is_configured(eager_app: Celery) -> None:
    """A worker's main process may publish (``-B``): that must not configure the agent,
    whose exporters and threads would then be handed to every child forked later."""
    agent, logs = Agent(), InMemoryLogRecordExporter()
    instrument_celery(eager_app, agent=agent, capture_logs=False)

    @eager_app.task(name="queued.noop")
    def noop() -> None:
        pass

    noop.apply_async()
    assert agent._state is None
    agent.configure(
        span_exporter=InMemorySpanExporter(), log_exporter=logs, capture_logging=False,
        heartbeat_interval_s=0,
    )  # fmt: skip
    try:
        result = noop.apply_async()
        agent.force_flush()
        queued = [
            dict(r.log_record.attributes or {})
            for r in logs.get_finished_logs()
            if (r.log_record.attributes or {}).get("event.name") == "job.queued"
        ]
        assert [(q["job.id"], q["job.type"], q["job.name"]) for q in queued] == [
            (result.id, noop.name, noop.name)
        ]
    finally:
        agent.shutdown()
