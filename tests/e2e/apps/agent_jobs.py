"""The reference jobs sent through the jobtrail agent (same shape as plain_sdk_jobs.py).

Prints a JSON map of job name -> job id.
"""

from __future__ import annotations

import json
import logging

import jobtrail

LEVELS = ("debug", "info", "success", "warn", "error", "fatal")
stdlib_log = logging.getLogger("e2e.worker")
stdlib_log.setLevel(logging.INFO)

jobtrail.configure()
ids: dict[str, str] = {}

with jobtrail.job(
    "nightly import", type="import", owner="ann", total_steps=3, source="s3://bucket/users.csv"
) as job:
    ids["nightly import"] = job.id
    job.info("import starting", rows_expected=300)
    for name in ("download", "transform"):
        with job.step(name) as step:
            for i in range(100):
                step.log(("debug", "info", "warn")[i % 3], f"{name} line {i}", line=i)
    with job.step("load") as step:
        step.warn("nothing to load, skipping")
        step.skip("nothing to load")
    with jobtrail.job("rebuild index", type="index", owner="ann") as child:
        ids["rebuild index"] = child.id
        child.success("index rebuilt", entries=300)
    job.success("import done", rows=300)
    job.result = {"rows": 300}

try:
    with jobtrail.job("broken export", type="export") as job:
        ids["broken export"] = job.id
        raise ValueError("disk full")
except ValueError:
    pass

with jobtrail.job("chatty", type="chatty", total_steps=2) as job:
    ids["chatty"] = job.id
    with job.step("talk") as step:
        for i in range(2000):
            step.log(LEVELS[i % len(LEVELS)], f"chatty line {i}", i=i)
    with job.step("stdlib") as step:
        stdlib_log.warning("from stdlib logging %s", "inside a step", extra={"batch": 7})
    job.progress(100, step="stdlib")

jobtrail.shutdown()
stats = jobtrail.agent_stats()
print(json.dumps(ids))
