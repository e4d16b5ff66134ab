"""Publish the Celery test tasks (one from inside a job); print JSON name -> task id.

``kill`` publishes only the tasks whose worker process dies under them (prefork pool),
``import`` only one import.
"""

from __future__ import annotations

import json
import sys

from celery_app import (
    broken_report,
    crash_worker,
    flaky_sync,
    hopeless_push,
    import_rows,
    stuck_export,
)

import jobtrail

jobtrail.configure()
ids: dict[str, str] = {}
if sys.argv[1:] == ["kill"]:
    ids["crash"] = crash_worker.delay().id
    ids["stuck"] = stuck_export.delay().id
elif sys.argv[1:] == ["import"]:
    ids["import"] = import_rows.delay(5).id
else:
    with jobtrail.job("enqueue imports", type="celery-producer") as job:
        ids["producer"] = job.id
        ids["import"] = import_rows.delay(120).id
    ids["flaky"] = flaky_sync.delay().id
    ids["hopeless"] = hopeless_push.delay().id
    ids["broken"] = broken_report.delay().id
jobtrail.shutdown()
print(json.dumps(ids))
