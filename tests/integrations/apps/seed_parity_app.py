"""Seed 000/003 patterns through the agent API, exporting to a real server.

Prints a JSON map of what the test needs (job ids, returned results).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import threading
from typing import Any

import jobtrail

jobtrail.configure(console=True)  # fan-out: stderr and OTLP at once (seed 003)
jobtrail.instrument_logging(logging.INFO)
log = logging.getLogger("parity")
out: dict[str, Any] = {}


# -- seed 000: executeJob(options, fn(executionId, updateProgress)) -------------------
def backup(job_id: str, update_progress: Any) -> dict[str, Any]:
    out["backup_seen_id"] = job_id
    update_progress(25, "Fetching data")
    update_progress(50, "Processing data")
    log.info("processed", extra={"records": 1000})
    update_progress(100, "Complete")
    return {"success": True, "recordsProcessed": 1000}


out["backup_result"] = jobtrail.execute_job(
    backup, name="Daily backup", type="parity-backup", owner="proj_123"
)


async def async_backup(job_id: str, update_progress: Any) -> str:
    out["async_backup_id"] = job_id
    await update_progress(40, "copying")
    await asyncio.sleep(0.01)
    return "copied"


out["async_result"] = asyncio.run(
    jobtrail.execute_job(async_backup, name="Async backup", type="parity-async")
)


# -- seed 003: RunStep with panic recovery -------------------------------------------
def risky(step: jobtrail.Step) -> None:
    step.info("about to fail")
    raise RuntimeError("something went wrong")


with jobtrail.job("vm migrate", type="parity-migration", operation="vm-migrate") as job:
    out["migration"] = job.id
    job.run_step("validate", lambda step: step.info("vm config ok", vm="test-vm"))
    assert job.run_step("notify", risky, reraise=False) is None  # recovered
    out["replicated"] = job.run_step("data-replication", lambda step: 107374182400)

try:
    with jobtrail.job("vm migrate strict", type="parity-strict") as job:
        out["strict"] = job.id
        job.run_step("risky-operation", risky)
except RuntimeError:
    pass


# -- seed 003: context propagation into workers --------------------------------------
def part(n: int) -> int:
    current = jobtrail.current_job()
    assert current is not None
    with current.step(f"pool part {n}") as step:
        step.info("pool worker", part=n)
    return n * n


async def gathered(job: jobtrail.Job, n: int) -> None:
    async with job.step(f"task part {n}"):
        await asyncio.sleep(0.01)
        log.info("task worker %d", n)


async def fan_out() -> None:
    async with jobtrail.job("fan out", type="parity-fanout", total_steps=8) as job:
        out["fanout"] = job.id
        with jobtrail.context_executor(max_workers=3) as pool:
            out["squares"] = list(pool.map(part, range(3)))
        await asyncio.gather(*(gathered(job, n) for n in range(3)))
        ctx = contextvars.copy_context()
        thread = threading.Thread(target=ctx.run, args=(part, 7))
        thread.start()
        thread.join()
        with job.step("done"):
            pass


asyncio.run(fan_out())

# -- start_job: a background job whose id is known at once ----------------------------
done = threading.Event()


def background(job_id: str, update_progress: Any) -> None:
    update_progress(50, "halfway")
    log.warning("background work")
    done.set()


background_job = jobtrail.start_job(background, name="background", type="parity-background")
out["background"] = background_job.id
done.wait(10)

jobtrail.shutdown()
print(json.dumps(out))
