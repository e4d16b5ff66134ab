"""Send N log lines in one job through the agent as fast as it allows; print elapsed seconds."""

from __future__ import annotations

import sys
import time

import jobtrail

n = int(sys.argv[1])
jobtrail.configure()
started = time.perf_counter()
with jobtrail.job("log burst", type="burst") as job:
    for i in range(n):
        job.log("warn" if i % 100 == 0 else "info", f"burst line {i}", i=i)
jobtrail.shutdown(timeout_s=60)
print(f"{time.perf_counter() - started:.3f}")
