"""Jobs for the page tests, sent through the jobtrail agent.

A completed import with ordered steps, a child job, a skipped step, mixed log levels and an
HTTP-like client span (the trace waterfall's non-step span); a failed export with a stack
trace; a cancelled report; and application logs that belong to no job (the logs page).

Prints a JSON map of job name -> job id.
"""

from __future__ import annotations

import json
import logging

from opentelemetry import trace
from opentelemetry.trace import SpanKind

import jobtrail

LEVELS = ("debug", "info", "success", "warn", "error", "fatal")

jobtrail.configure()
app_log = logging.getLogger("billing.scheduler")
app_log.setLevel(logging.INFO)
http = trace.get_tracer("web-test.http")
ids: dict[str, str] = {}

app_log.warning("scheduler started without a lock file")

with jobtrail.job("nightly import", type="import", owner="ann", total_steps=3) as job:
    ids["nightly import"] = job.id
    job.info("import starting", rows_expected=300)
    with job.step("download") as step:
        with http.start_as_current_span(
            "GET /exports/users.csv",
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": "GET", "url.full": "https://files.test/users.csv"},
        ):
            for i in range(30):
                step.log(LEVELS[i % len(LEVELS)], f"download line {i}", line=i)
    with job.step("transform") as step:
        for i in range(30):
            step.log(LEVELS[i % len(LEVELS)], f"transform line {i}", line=i)
    with job.step("load") as step:
        step.skip("nothing to load")
    with jobtrail.job("rebuild index", type="index", owner="ann") as child:
        ids["rebuild index"] = child.id
        child.success("index rebuilt", entries=300)
    job.success("import done", rows=300)
    job.result = {"rows": 300}


def write_chunk(n: int) -> None:
    raise OSError(f"disk full after {n} chunks")


try:
    with jobtrail.job("broken export", type="export", owner="bob") as job:
        ids["broken export"] = job.id
        with job.step("prepare") as step:
            step.info("prepared")
        with job.step("write") as step:
            step.info("writing chunks")
            write_chunk(3)
except OSError:
    pass

with jobtrail.job("quarterly report", type="report", owner="bob") as job:
    ids["quarterly report"] = job.id
    job.cancel("superseded by a newer run")

app_log.error("nightly billing run skipped", extra={"reason": "holiday"})

jobtrail.shutdown()
print(json.dumps(ids))
