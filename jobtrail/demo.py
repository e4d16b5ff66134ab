"""``jobtrail demo``: realistic sample jobs sent through the agent to a running server.

Successes, a failure with a traceback, child jobs, a skipped step, a cancelled job,
progress, stdlib ``logging`` inside steps, queued jobs (one still waiting for a worker), and
a few thousand log lines — enough to make every view of the API and the page show something
real.
"""

from __future__ import annotations

import logging
import random
import time

import jobtrail

log = logging.getLogger("demo.worker")

_USERS = ("ann", "bob", "chen", "dara")


def _nightly_import(rng: random.Random) -> None:
    rows = rng.randint(800, 1200)
    with jobtrail.job(
        "nightly import",
        type="import",
        owner=rng.choice(_USERS),
        total_steps=4,
        source="s3://exports/users.csv",
        rows_expected=rows,
    ) as job:
        job.info("import starting", rows_expected=rows)
        with job.step("download") as step:
            for chunk in range(60):
                step.debug("downloaded chunk", chunk=chunk, bytes=rng.randint(10_000, 90_000))
                time.sleep(0.002)
        with job.step("validate") as step:
            bad = 0
            for i in range(0, rows, 2):
                if rng.random() < 0.03:
                    bad += 1
                    step.warn("invalid row skipped", row=i, reason="missing email")
                else:
                    step.debug("row ok", row=i)
            log.warning("validation finished with %d bad rows", bad)
        with job.step("transform") as step:
            for batch in range(10):
                step.info("transformed batch", batch=batch, size=rows // 10)
                job.progress(50 + batch * 2.5, step="transform")
                time.sleep(0.01)
        with job.step("load") as step:
            step.info("writing to warehouse", table="users")
            with jobtrail.job("rebuild search index", type="index", owner="system") as child:
                for shard in range(3):
                    child.info("shard rebuilt", shard=shard)
                child.success("index rebuilt")
        job.result = {"rows": rows, "bad_rows": bad}
        job.success("import done", rows=rows)


def _backup(rng: random.Random) -> None:
    with jobtrail.job("backup project", type="backup", owner=rng.choice(_USERS)) as job:
        for volume in ("db", "uploads"):
            with jobtrail.job(f"snapshot {volume}", type="snapshot", volume=volume) as snap:
                for part in range(5):
                    snap.info("copied part", part=part, mb=rng.randint(50, 500))
                    time.sleep(0.01)
                snap.success("snapshot complete")
        with job.step("verify") as step:
            step.info("checksums match")
        with job.step("prune old backups") as step:
            step.skip("retention policy keeps everything this week")


def _newsletter(rng: random.Random) -> None:
    try:
        with jobtrail.job("send newsletter", type="email", owner="marketing", total_steps=2) as job:
            with job.step("render"):
                job.info("rendered template", recipients=250)
            with job.step("deliver") as step:
                for i in range(40):
                    step.info("sent", recipient=f"user{i}@example.test")
                raise ConnectionError("SMTP server closed the connection")
    except ConnectionError:
        pass  # recorded as a failed job with its traceback


def _report(rng: random.Random) -> None:
    with jobtrail.job("quarterly report", type="report", owner=rng.choice(_USERS)) as job:
        with job.step("query"):
            job.info("running query", quarter="Q3")
        job.cancel("superseded by a newer request")


def _invoices(rng: random.Random) -> None:
    """Queued by a scheduler, taken by a worker a moment later (the wait shows on the page)."""
    month = f"2026-{rng.randint(1, 12):02d}"
    job_id = jobtrail.enqueue("monthly invoices", type="billing", owner="finance", month=month)
    time.sleep(0.05)
    with jobtrail.job("monthly invoices", type="billing", id=job_id, month=month) as job:
        for customer in range(20):
            job.info("invoice issued", customer=customer, cents=rng.randint(1_000, 90_000))
        job.result = {"invoices": 20}


_TEMPLATES = (
    _nightly_import, _backup, _newsletter, _invoices, _nightly_import, _report, _backup,
)  # fmt: skip


def run_demo(*, endpoint: str | None = None, jobs: int = 12) -> int:
    """Run ``jobs`` sample jobs against the server at ``endpoint``; return an exit code."""
    logging.getLogger("demo").setLevel(logging.INFO)
    jobtrail.configure(service_name="jobtrail-demo", endpoint=endpoint)
    rng = random.Random(7)
    started = time.monotonic()
    for i in range(jobs):
        _TEMPLATES[i % len(_TEMPLATES)](rng)
    # No worker takes this one: it stays pending, waiting in its queue.
    jobtrail.enqueue("yearly archive", type="archive", owner="ops")
    jobtrail.shutdown()
    print(f"jobtrail demo: {jobs} jobs sent in {time.monotonic() - started:.1f} s")
    return 0
