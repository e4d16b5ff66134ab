"""A Celery app instrumented with jobtrail, run by a real worker in the Celery tests.

The filesystem broker lives in ``$JOBTRAIL_TEST_CELERY_DIR`` so the worker and the
producer (``celery_producer.py``), two processes, share the queue without a server.
"""

from __future__ import annotations

import logging
import os
import signal
import time

from celery import Celery
from celery.utils.log import get_task_logger

import jobtrail
from jobtrail.agent.integrations.celery import instrument_celery

BROKER_DIR = os.environ["JOBTRAIL_TEST_CELERY_DIR"]

app = Celery("celery_app", broker="filesystem://")
app.conf.update(
    broker_transport_options={
        "data_folder_in": BROKER_DIR,
        "data_folder_out": BROKER_DIR,
        "control_folder": os.path.join(BROKER_DIR, "control"),  # not the working directory
        "polling_interval": 0.05,
    },
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    worker_lost_wait=0.5,  # fail a killed child's task at once, not after 10 s
)
instrument_celery(app)

log = get_task_logger(__name__)
billing = logging.getLogger("billing")


def current() -> jobtrail.Job:
    job = jobtrail.current_job()
    assert job is not None, "the task runs outside a job"
    return job


@app.task
def import_rows(count: int) -> dict[str, int]:
    log.info("importing %d rows", count)
    job = current()
    with job.step("download") as step:
        step.info("fetched", rows=count)
    with job.step("store"):
        billing.warning("slow store", extra={"table": "users"})
    return {"rows": count}


@app.task(bind=True, max_retries=3)
def flaky_sync(self: object) -> str:
    retries = self.request.retries  # type: ignore[attr-defined]
    log.info("sync attempt %d", retries + 1)
    try:
        if retries < 2:
            raise TimeoutError(f"upstream timed out (try {retries + 1})")
    except TimeoutError as exc:
        raise self.retry(exc=exc, countdown=0.1) from exc  # type: ignore[attr-defined]
    return "synced"


@app.task(autoretry_for=(ConnectionError,), retry_kwargs={"max_retries": 1, "countdown": 0.1})
def hopeless_push() -> None:
    raise ConnectionError("broker refused")


def parse_row(text: str) -> list[str]:
    raise ValueError(f"bad row {text!r}")


@app.task
def broken_report() -> None:
    with current().step("parse"):
        parse_row("7;x")


@app.task
def crash_worker() -> None:
    log.warning("about to be killed")
    time.sleep(0.3)  # mid-task, as a crash would be (the pool knows by now that it started)
    os.kill(os.getpid(), signal.SIGKILL)


@app.task(time_limit=1)
def stuck_export() -> None:
    time.sleep(30)  # killed by the hard time limit
