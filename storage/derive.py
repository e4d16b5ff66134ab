"""Merging job and step updates into derived rows, whatever order they arrive in.

A job is described by several records: lifecycle records while it runs (``job.started``,
``job.progress``, ...) and its span when it ends. They can arrive in any order and more
than once (client retries). The rules, which make the merge order-independent for the
final state:

* the span (``final``) settles the row: its fields override lifecycle fields;
* a lifecycle record after the span only fills fields the span left empty;
* ``started_at`` keeps the earliest value, ``last_seen`` the latest;
* attribute maps are merged key by key;
* a ``job.queued`` record (``queued_at``) only fills what nothing else has said: it is
  usually first, but a worker can start the job before the queue's record arrives.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from jobtrail.storage.model import JobUpdate, StepUpdate

JOB_COLUMNS = (
    "id", "trace_id", "span_id", "parent_job_id", "parent_span_id", "type", "name",
    "operation", "owner", "service", "status", "progress", "current_step", "total_steps",
    "attempt", "started_at", "ended_at", "duration_ms", "error", "error_type", "stack_trace",
    "result", "cancel_reason", "attributes", "last_seen", "span_received", "attempts",
)  # fmt: skip
STEP_COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "job_id", "seq", "name", "status", "started_at",
    "ended_at", "duration_ms", "error", "attributes", "span_received",
)  # fmt: skip

_JOB_FIELDS = tuple(
    f.name
    for f in fields(JobUpdate)
    if f.name not in ("final", "seen_at", "attributes", "id", "queued_at")
)
_STEP_FIELDS = tuple(
    f.name
    for f in fields(StepUpdate)
    if f.name not in ("final", "seen_at", "attributes", "trace_id", "span_id")
)
_FINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "skipped", "retrying"})


def new_job_row(job_id: str) -> dict[str, Any]:
    """An empty ``jobs`` row: pending until something says it runs."""
    row: dict[str, Any] = dict.fromkeys(JOB_COLUMNS)
    row.update(id=job_id, status="pending", attributes={}, span_received=False, attempts=[])
    return row


def new_step_row(trace_id: str, span_id: str) -> dict[str, Any]:
    """An empty ``steps`` row."""
    row: dict[str, Any] = dict.fromkeys(STEP_COLUMNS)
    row.update(
        trace_id=trace_id, span_id=span_id, status="running", attributes={}, span_received=False
    )
    return row


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _apply(row: dict[str, Any], update: Any, names: tuple[str, ...]) -> None:
    """Copy the update's fields into the row under the span-settles-the-row rule."""
    settled = bool(row["span_received"])
    overriding = update.final or not settled
    for name in names:
        value = getattr(update, name)
        if value is None:
            continue
        if name == "started_at":
            row[name] = _earliest(row[name], value)
        elif overriding or row.get(name) is None:
            row[name] = value
    if overriding:
        row["attributes"] = {**row["attributes"], **update.attributes}
    else:
        row["attributes"] = {**update.attributes, **row["attributes"]}
    if update.final:
        row["span_received"] = True


def _record_attempt(row: dict[str, Any], update: JobUpdate) -> None:
    number = update.attempt or 1
    entry = {
        "attempt": number,
        "status": "failed" if update.status == "retrying" else update.status,
        "error": update.error,
        "error_type": update.error_type,
        "started_at": update.started_at,
        "ended_at": update.ended_at,
        "duration_ms": update.duration_ms,
        "span_id": update.span_id,
    }
    attempts = [a for a in row["attempts"] or [] if a.get("attempt") != number]
    row["attempts"] = sorted([*attempts, entry], key=lambda a: a["attempt"])


def _merge_queued(row: dict[str, Any], update: JobUpdate) -> dict[str, Any]:
    row["queued_at"] = _earliest(row.get("queued_at"), update.queued_at)
    for name in _JOB_FIELDS:
        value = getattr(update, name)
        if value is not None and row.get(name) is None:
            row[name] = value
    row["attributes"] = {**update.attributes, **row["attributes"]}
    row["last_seen"] = _latest(row["last_seen"], update.seen_at)
    return row


def merge_job(row: dict[str, Any], update: JobUpdate) -> dict[str, Any]:
    """Apply one job update to a ``jobs`` row (mutated and returned).

    Attempts of a retried job share its id: a later attempt supersedes the row's state
    (its first records re-open a ``retrying`` job), an earlier one arriving late only
    adds its entry to ``attempts``.
    """
    if update.queued_at is not None:
        return _merge_queued(row, update)
    attempt, current = update.attempt or 1, row["attempt"] or 1
    if update.final:
        _record_attempt(row, update)
    if attempt < current:
        row["last_seen"] = _latest(row["last_seen"], update.seen_at)
        row["started_at"] = _earliest(row["started_at"], update.started_at)
        return row
    if attempt > current and row["span_received"]:
        row["span_received"] = False  # the new attempt's span has not arrived yet
        row.update(status="pending", ended_at=None, error=None, error_type=None, stack_trace=None)
    if not update.final and row["span_received"]:
        # The span already settled status and progress; only fill gaps.
        update_status, update.status = update.status, None
        _apply(row, update, _JOB_FIELDS)
        update.status = update_status
    else:
        if not update.final and row["status"] in _FINAL_STATUSES:
            update.status = None
        _apply(row, update, _JOB_FIELDS)
    if update.final and row["status"] == "completed" and update.progress is None:
        row["progress"] = 100.0
    if update.final and row["started_at"] and row["ended_at"]:
        row["duration_ms"] = (row["ended_at"] - row["started_at"]).total_seconds() * 1000
    row["last_seen"] = _latest(row["last_seen"], update.seen_at)
    return row


def merge_step(row: dict[str, Any], update: StepUpdate) -> dict[str, Any]:
    """Apply one step update to a ``steps`` row (mutated and returned)."""
    if not update.final and row["span_received"]:
        update_status, update.status = update.status, None
        _apply(row, update, _STEP_FIELDS)
        update.status = update_status
    else:
        _apply(row, update, _STEP_FIELDS)
    return row
