"""Wire conventions shared by the agent and the collector.

These names are the contract for OTLP clients in any language (see docs/conventions.md):
a job is a span carrying ``job.type``; a step is a span carrying ``job.step`` under a job;
logs are OTel log records linked to those spans; lifecycle records (``event.name``) make
running jobs visible before their spans end. Keep this module free of imports so both
sides can use it without pulling in the other.
"""

from __future__ import annotations

# --- job span attributes -------------------------------------------------------------
JOB_TYPE = "job.type"
JOB_ID = "job.id"
JOB_NAME = "job.name"
JOB_OWNER = "job.owner"
JOB_OPERATION = "job.operation"
JOB_TOTAL_STEPS = "job.total_steps"
JOB_ATTEMPT = "job.attempt"
JOB_RESULT = "job.result"
JOB_STATUS = "job.status"
JOB_CANCEL_REASON = "job.cancel_reason"
JOB_METADATA_PREFIX = "job.metadata."
#: Optional: the id of the parent job. Clients that know it set it so the parent link does
#: not depend on the parent's span having arrived; otherwise span ancestry decides.
JOB_PARENT_ID = "job.parent_id"
#: On a failed attempt's span: another attempt of the same job (same ``job.id``) follows.
JOB_WILL_RETRY = "job.will_retry"

# --- step span attributes ------------------------------------------------------------
JOB_STEP = "job.step"
JOB_STEP_SEQ = "job.step.seq"
JOB_STEP_STATUS = "job.step.status"
#: Why a ``skipped`` step did not run (stored as the step's ``skip_reason`` attribute).
JOB_STEP_SKIP_REASON = "job.step.skip_reason"

# --- progress (lifecycle records and span attributes) --------------------------------
JOB_PROGRESS = "job.progress"
JOB_CURRENT_STEP = "job.current_step"

# --- log record attributes -----------------------------------------------------------
LOG_IOSTREAM = "log.iostream"
LOG_CATEGORY = "log.category"
LOG_SOURCE = "log.source"
EVENT_NAME = "event.name"
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
EXCEPTION_STACKTRACE = "exception.stacktrace"

# --- lifecycle event names -----------------------------------------------------------
#: A job was put in a queue and waits for a worker: it shows as ``pending`` (with
#: ``queued_at``) until its ``job.started`` or span arrives. Carries the job's ``job.id``.
EVENT_JOB_QUEUED = "job.queued"
EVENT_JOB_STARTED = "job.started"
EVENT_JOB_PROGRESS = "job.progress"
EVENT_JOB_HEARTBEAT = "job.heartbeat"
EVENT_STEP_STARTED = "step.started"
LIFECYCLE_EVENTS = frozenset(
    {
        EVENT_JOB_QUEUED,
        EVENT_JOB_STARTED,
        EVENT_JOB_PROGRESS,
        EVENT_JOB_HEARTBEAT,
        EVENT_STEP_STARTED,
    }
)

# --- OTel CI/CD semantic conventions recognised as jobs and steps --------------------
CICD_PIPELINE_NAME = "cicd.pipeline.name"
CICD_PIPELINE_RUN_ID = "cicd.pipeline.run.id"
CICD_TASK_NAME = "cicd.pipeline.task.name"
CICD_TASK_RUN_ID = "cicd.pipeline.task.run.id"
CICD_RESULT = "cicd.pipeline.result"

# --- statuses and levels -------------------------------------------------------------
JOB_STATUSES = ("pending", "running", "retrying", "completed", "failed", "cancelled", "lost")
FINAL_JOB_STATUSES = frozenset({"completed", "failed", "cancelled"})
STEP_STATUSES = ("running", "completed", "failed", "skipped")

#: Level name -> OTel severity number used when emitting.
SEVERITY_BY_LEVEL = {
    "debug": 5,
    "info": 9,
    "success": 10,
    "warn": 13,
    "error": 17,
    "fatal": 21,
}
LEVELS = tuple(SEVERITY_BY_LEVEL)
SUCCESS_SEVERITY_TEXT = "SUCCESS"


def level_for(severity_number: int, severity_text: str = "") -> str:
    """Map an OTel severity number (and text, for SUCCESS) to a jobtrail level name."""
    if severity_number <= 0:
        text = severity_text.lower()
        if text.startswith("warn"):
            return "warn"
        if text in SEVERITY_BY_LEVEL:
            return text
        if text in ("critical", "crit"):
            return "fatal"
        return "info"
    if severity_number < 9:
        return "debug"
    if severity_number < 13:
        if severity_number >= 10 and severity_text.upper() == SUCCESS_SEVERITY_TEXT:
            return "success"
        return "info"
    if severity_number < 17:
        return "warn"
    if severity_number < 21:
        return "error"
    return "fatal"
