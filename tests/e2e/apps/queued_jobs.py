"""A producer that queues jobs, and a worker that runs one of them, through the agent.

Usage: queued_jobs.py produce            -> prints JSON {"waiting": id, "taken": id}
       queued_jobs.py work JOB_ID        -> runs that job as a worker would
"""

from __future__ import annotations

import json
import sys
import time

import jobtrail

jobtrail.configure()
if sys.argv[1] == "produce":
    with jobtrail.job("nightly batch", type="batch") as batch:  # the enqueuing job: a parent
        ids = {
            "waiting": jobtrail.enqueue("export us", type="export", owner="ops", region="us"),
            "taken": jobtrail.enqueue("export eu", type="export", owner="ops", region="eu"),
            "batch": batch.id,
        }
    time.sleep(0.3)  # the queue wait the worker's job will show
    jobtrail.shutdown()
    print(json.dumps(ids))
else:
    with jobtrail.job("export eu", type="export", id=sys.argv[2]) as job:
        job.info("picked up")
        job.progress(50, step="halfway")
    jobtrail.shutdown()
