"""Reading jobtrail's wire conventions out of spans and lifecycle log records.

This is the one place that decides what a span or log record says about a job or a step
(see docs/conventions.md). Ordinary spans and logs produce nothing here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson

from jobtrail import semconv as sc
from jobtrail.storage.model import JobUpdate, StepUpdate

_JOB_STATUSES = frozenset({"completed", "failed", "cancelled"})
_STEP_STATUSES = frozenset({"completed", "failed", "skipped"})
_CICD_STATUS = {
    "success": "completed",
    "failure": "failed",
    "error": "failed",
    "timeout": "failed",
    "cancellation": "cancelled",
    "skip": "skipped",
}
_STATUS_ERROR = 2


_EPOCH = datetime(1970, 1, 1)
#: Attribute prefixes that are conventions, not user metadata (``job.metadata.*`` aside).
_CONVENTION_PREFIXES = ("job.", "cicd.pipeline.")


def ts(us: int | None) -> datetime | None:
    """Microseconds since the epoch to a naive UTC datetime (the TIMESTAMP columns' form).

    Integer arithmetic: exact for every microsecond, and cheaper than going through a float.
    """
    if us is None:
        return None
    return _EPOCH + timedelta(microseconds=us)


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return None if value is None else min(100.0, max(0.0, float(value)))
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _result_json(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            orjson.loads(value)
            return value
        except orjson.JSONDecodeError:
            pass
    return orjson.dumps(value, default=repr).decode()


def job_metadata(attrs: dict[str, Any]) -> dict[str, Any]:
    """User attributes of a job: ``job.metadata.*`` without the prefix, plus non-job keys."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if not key.startswith(_CONVENTION_PREFIXES):
            out[key] = value
        elif key.startswith(sc.JOB_METADATA_PREFIX):
            out[key[len(sc.JOB_METADATA_PREFIX) :]] = value
    return out


def _last_exception(events: list[dict[str, Any]]) -> dict[str, Any]:
    for event in reversed(events):
        if event.get("name") == "exception":
            attrs: dict[str, Any] = event.get("attributes") or {}
            return attrs
    return {}


def is_job_span(attrs: dict[str, Any]) -> bool:
    """A job span carries ``job.type`` (or is a CI/CD pipeline run)."""
    return sc.JOB_TYPE in attrs or (
        sc.CICD_PIPELINE_NAME in attrs and sc.CICD_TASK_NAME not in attrs
    )


def is_step_span(attrs: dict[str, Any]) -> bool:
    """A step span carries ``job.step`` (or is a CI/CD pipeline task run)."""
    return sc.JOB_STEP in attrs or sc.CICD_TASK_NAME in attrs


def job_from_span(
    *,
    trace_id: str,
    span_id: str,
    parent_span_id: str | None,
    name: str,
    start_us: int | None,
    end_us: int | None,
    status_code: int,
    status_message: str,
    attrs: dict[str, Any],
    events: list[dict[str, Any]],
    service: str | None,
    seen_at: datetime,
) -> JobUpdate:
    """The final state of a job from its span."""
    cicd = sc.JOB_TYPE not in attrs
    status = _str(attrs.get(sc.JOB_STATUS))
    if cicd and status is None:
        status = _CICD_STATUS.get(str(attrs.get(sc.CICD_RESULT, "")).lower())
    if status not in _JOB_STATUSES:
        status = "failed" if status_code == _STATUS_ERROR else "completed"
    exc = _last_exception(events)
    error = None
    if status == "failed":
        error = status_message or _str(exc.get(sc.EXCEPTION_MESSAGE)) or "failed"
        if attrs.get(sc.JOB_WILL_RETRY) is True:
            status = "retrying"
    started, ended = ts(start_us), ts(end_us)
    return JobUpdate(
        id=_str(attrs.get(sc.JOB_ID))
        or (_str(attrs.get(sc.CICD_PIPELINE_RUN_ID)) if cicd else None)
        or span_id,
        final=True,
        seen_at=seen_at,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        parent_job_id=_str(attrs.get(sc.JOB_PARENT_ID)),
        type="cicd.pipeline" if cicd else _str(attrs.get(sc.JOB_TYPE)),
        name=_str(attrs.get(sc.JOB_NAME))
        or (_str(attrs.get(sc.CICD_PIPELINE_NAME)) if cicd else None)
        or name,
        operation=_str(attrs.get(sc.JOB_OPERATION)),
        owner=_str(attrs.get(sc.JOB_OWNER)),
        service=service,
        status=status,
        progress=_float(attrs.get(sc.JOB_PROGRESS)),
        current_step=_str(attrs.get(sc.JOB_CURRENT_STEP)),
        total_steps=_int(attrs.get(sc.JOB_TOTAL_STEPS)),
        attempt=_int(attrs.get(sc.JOB_ATTEMPT)),
        started_at=started,
        ended_at=ended,
        duration_ms=(end_us - start_us) / 1000 if start_us and end_us else None,
        error=error,
        error_type=_str(exc.get(sc.EXCEPTION_TYPE)) if error else None,
        stack_trace=_str(exc.get(sc.EXCEPTION_STACKTRACE)) if error else None,
        result=_result_json(attrs.get(sc.JOB_RESULT)),
        cancel_reason=_str(attrs.get(sc.JOB_CANCEL_REASON)),
        attributes=job_metadata(attrs),
    )


def step_from_span(
    *,
    trace_id: str,
    span_id: str,
    parent_span_id: str | None,
    name: str,
    start_us: int | None,
    end_us: int | None,
    status_code: int,
    status_message: str,
    attrs: dict[str, Any],
    events: list[dict[str, Any]],
    seen_at: datetime,
) -> StepUpdate:
    """The final state of a step from its span."""
    status = _str(attrs.get(sc.JOB_STEP_STATUS))
    if status is None and sc.CICD_TASK_NAME in attrs:
        status = _CICD_STATUS.get(str(attrs.get(sc.CICD_RESULT, "")).lower())
    if status not in _STEP_STATUSES:
        status = "failed" if status_code == _STATUS_ERROR else "completed"
    exc = _last_exception(events)
    error = None
    if status == "failed":
        error = status_message or _str(exc.get(sc.EXCEPTION_MESSAGE)) or "failed"
    attributes = job_metadata(attrs)
    skip_reason = _str(attrs.get(sc.JOB_STEP_SKIP_REASON))
    if status == "skipped" and skip_reason:
        attributes["skip_reason"] = skip_reason
    return StepUpdate(
        trace_id=trace_id,
        span_id=span_id,
        final=True,
        seen_at=seen_at,
        job_id=_str(attrs.get(sc.JOB_ID)),
        parent_span_id=parent_span_id,
        seq=_int(attrs.get(sc.JOB_STEP_SEQ)),
        name=_str(attrs.get(sc.JOB_STEP)) or _str(attrs.get(sc.CICD_TASK_NAME)) or name,
        status=status,
        started_at=ts(start_us),
        ended_at=ts(end_us),
        duration_ms=(end_us - start_us) / 1000 if start_us and end_us else None,
        error=error,
        attributes=attributes,
    )


def _describe(job: JobUpdate, attrs: dict[str, Any], service: str | None) -> JobUpdate:
    """Fill what ``job.queued`` and ``job.started`` both say about the job itself."""
    job.type = _str(attrs.get(sc.JOB_TYPE))
    job.name = _str(attrs.get(sc.JOB_NAME))
    job.owner = _str(attrs.get(sc.JOB_OWNER))
    job.operation = _str(attrs.get(sc.JOB_OPERATION))
    job.total_steps = _int(attrs.get(sc.JOB_TOTAL_STEPS))
    job.parent_job_id = _str(attrs.get(sc.JOB_PARENT_ID))
    job.service = service
    job.attributes = {
        k[len(sc.JOB_METADATA_PREFIX) :]: v
        for k, v in attrs.items()
        if k.startswith(sc.JOB_METADATA_PREFIX)
    }
    return job


def lifecycle_updates(
    *,
    event: str,
    trace_id: str | None,
    span_id: str | None,
    time_us: int | None,
    attrs: dict[str, Any],
    service: str | None,
    seen_at: datetime,
) -> tuple[JobUpdate | None, StepUpdate | None]:
    """What a lifecycle record (``job.started``, ``job.progress``, ...) says."""
    job_id = _str(attrs.get(sc.JOB_ID))
    at = ts(time_us) or seen_at
    if event == sc.EVENT_STEP_STARTED:
        if not (trace_id and span_id):
            return None, None
        step_name = _str(attrs.get(sc.JOB_STEP))
        step = StepUpdate(
            trace_id=trace_id,
            span_id=span_id,
            final=False,
            seen_at=at,
            job_id=job_id,
            seq=_int(attrs.get(sc.JOB_STEP_SEQ)),
            name=step_name,
            status="running",
            started_at=at,
        )
        job = None
        if job_id:
            job = JobUpdate(
                id=job_id,
                final=False,
                seen_at=at,
                status="running",
                current_step=step_name,
                progress=_float(attrs.get(sc.JOB_PROGRESS)),  # progress up to this step
            )
        return job, step
    if not job_id and event == sc.EVENT_JOB_STARTED and span_id:
        job_id = span_id
    if not job_id:
        return None, None
    if event == sc.EVENT_JOB_QUEUED:
        # The job exists, ``pending``, from ``at``. The record's trace and span are the
        # enqueuing code's, not the job's, so they are not taken; it sets no status, so a
        # record of the running job that arrived first is not undone.
        queued = JobUpdate(id=job_id, final=False, seen_at=at, queued_at=at)
        return _describe(queued, attrs, service), None
    job = JobUpdate(id=job_id, final=False, seen_at=at, status="running")
    if event == sc.EVENT_JOB_STARTED:
        _describe(job, attrs, service)
        job.trace_id, job.span_id = trace_id, span_id
        job.attempt = _int(attrs.get(sc.JOB_ATTEMPT))
        job.started_at = at
        job.progress = 0.0
    elif event == sc.EVENT_JOB_PROGRESS:
        job.progress = _float(attrs.get(sc.JOB_PROGRESS))
        job.current_step = _str(attrs.get(sc.JOB_CURRENT_STEP))
    return job, None
