"""A program that uses the agent, run under ``jobtrail run``: its job joins the wrapper's.

Prints its job id on stdout (which the wrapper captures and echoes).
"""

from __future__ import annotations

import logging

import jobtrail

jobtrail.configure()
with jobtrail.job("child work", type="run-child") as job:
    with job.step("compute") as step:
        step.info("computing inside the child")
    logging.getLogger("child").warning("stdlib warning inside the child job")
    print(job.id, flush=True)
jobtrail.shutdown()
