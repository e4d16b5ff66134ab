"""Retried and cancelled jobs, skipped and failed steps through the agent, with debug
records left out by ``JOBTRAIL_MIN_LEVEL``. Prints JSON name -> job id."""

from __future__ import annotations

import json
import os

import jobtrail

os.environ["JOBTRAIL_MIN_LEVEL"] = "info"
jobtrail.configure()
ids: dict[str, str] = {}
calls = {"flaky": 0}


@jobtrail.job_fn("flaky sync", type="sync", retries=2, retry_delay_s=0.05)
def flaky() -> str:
    calls["flaky"] += 1
    job = jobtrail.current_job()
    assert job is not None
    ids["flaky sync"] = job.id
    if calls["flaky"] < 3:
        raise TimeoutError(f"upstream timed out (call {calls['flaky']})")
    job.result = {"calls": calls["flaky"]}
    return "ok"


@jobtrail.job_fn("hopeless sync", type="sync", retries=1, retry_delay_s=0.05)
def hopeless() -> None:
    job = jobtrail.current_job()
    assert job is not None
    ids["hopeless sync"] = job.id
    raise PermissionError("token revoked")


assert flaky() == "ok"
try:
    hopeless()
except PermissionError:
    pass

with jobtrail.job("superseded report", type="report") as job:
    ids["superseded report"] = job.id
    job.cancel("superseded by a newer request")

try:
    with jobtrail.job("interrupted import", type="import") as job:
        ids["interrupted import"] = job.id
        raise KeyboardInterrupt
except KeyboardInterrupt:
    pass

with jobtrail.job("checked import", type="import") as job:
    ids["checked import"] = job.id
    with job.step("migrate") as step:
        step.skip("no pending migrations")
    with job.step("validate") as step:
        step.debug("row 1 ok")
        step.info("3 rows checked")
        step.fail("2 rows without an id")

jobtrail.shutdown()
print(json.dumps(ids))
