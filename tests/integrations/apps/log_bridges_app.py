"""Application logs through stdlib logging, structlog or loguru (argv[1]) into jobtrail.

Prints a JSON map of job name -> job id, plus the source line of the system log.
"""

from __future__ import annotations

import json
import logging
import sys

import jobtrail

library = sys.argv[1]
jobtrail.configure(capture_logging=False)
ids: dict[str, str] = {}

if library == "stdlib":
    jobtrail.instrument_logging(logging.INFO)
    jobtrail.instrument_logging(logging.INFO)  # idempotent: no second handler
    jobtrail.instrument_logging(logging.INFO, logger="billing")  # covered by the root one
    log = logging.getLogger("billing")
    source_line = sys._getframe().f_lineno + 1
    log.info("invoice sent", extra={"invoice": 42, "customer": {"id": 7}})
    logging.getLogger("billing").debug("not captured: below INFO")
    with jobtrail.job("charge cards", type="log-bridge-stdlib") as job:
        ids["job"] = job.id
        with job.step("charge"):
            try:
                raise ValueError("card declined")
            except ValueError:
                log.exception("charge failed", extra={"card": "visa"})
        log.warning("retry later")
        job.success("done")
elif library == "structlog":
    import structlog

    from jobtrail.agent.integrations.structlog import JobtrailProcessor

    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.CallsiteParameterAdder(
                [
                    structlog.processors.CallsiteParameter.MODULE,
                    structlog.processors.CallsiteParameter.LINENO,
                ]
            ),
            JobtrailProcessor(),
            structlog.dev.ConsoleRenderer(colors=False),
        ]
    )
    log = structlog.get_logger()
    source_line = sys._getframe().f_lineno + 1
    log.info("invoice sent", logger="billing", invoice=42, customer={"id": 7})
    with jobtrail.job("charge cards", type="log-bridge-structlog") as job:
        ids["job"] = job.id
        with job.step("charge"):
            try:
                raise ValueError("card declined")
            except ValueError:
                log.exception("charge failed", card="visa")
        log.warning("retry later")
        job.success("done")
elif library == "loguru":
    from loguru import logger

    from jobtrail.agent.integrations.loguru import jobtrail_sink

    logger.remove()
    logger.add(sys.stderr, level="INFO")
    logger.add(jobtrail_sink(), level="INFO")
    source_line = sys._getframe().f_lineno + 1
    logger.bind(invoice=42, customer={"id": 7}).info("invoice sent")
    with jobtrail.job("charge cards", type="log-bridge-loguru") as job:
        ids["job"] = job.id
        with job.step("charge"):
            try:
                raise ValueError("card declined")
            except ValueError:
                logger.bind(card="visa").exception("charge failed")
        logger.warning("retry later")
        logger.success("done")
else:
    raise SystemExit(f"unknown library {library}")

jobtrail.shutdown()
print(json.dumps({**ids, "source_line": source_line}))
