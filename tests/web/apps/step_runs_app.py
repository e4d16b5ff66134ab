"""A job whose step ``upload`` runs twice (a retried step), each run logging its own line.

Prints a JSON map: {"job": job id}.
"""

from __future__ import annotations

import json

import jobtrail

jobtrail.configure()
with jobtrail.job("publish report", type="report") as job:
    for attempt in (1, 2):
        with job.step("upload") as step:
            step.info(f"upload attempt {attempt}")
    with job.step("notify") as step:
        step.info("notified")
jobtrail.shutdown()
print(json.dumps({"job": job.id}))
