"""Shapes that cross the storage -> API boundary: filters in, JSON-ready rows out, errors.

The API serialises these dicts as they are, so their keys are the public JSON field names
(the table column names, see DESIGN "HTTP API"). Timestamps are RFC 3339 UTC strings and
JSON columns are parsed, which keeps the API layer free of per-field conversions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

# --- errors -------------------------------------------------------------------------------


class QueryError(Exception):
    """Base of the errors the read side raises; the API maps each subclass to one status."""


class NotFound(QueryError):
    """The thing asked for does not exist (HTTP 404)."""


class JobNotFound(NotFound):
    """No job has this id."""

    def __init__(self, *, job_id: str) -> None:
        super().__init__(f"job {job_id!r} not found")
        self.job_id = job_id


class TraceNotFound(NotFound):
    """No span of this trace has been stored."""

    def __init__(self, *, trace_id: str) -> None:
        super().__init__(f"trace {trace_id!r} not found")
        self.trace_id = trace_id


class InvalidParameter(QueryError, ValueError):
    """A request parameter is malformed or out of range (HTTP 400).

    The message always starts with the parameter's name so a user can fix the request
    without reading the server's log.
    """

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


# --- filters ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class JobFilter:
    """Which jobs ``list_jobs`` returns; ``None``/empty means "any".

    Times are naive UTC, compared with ``started_at`` (``since`` inclusive, ``until``
    exclusive). ``q`` is a case-insensitive substring of name, id, type or error.
    """

    type: str | None = None
    statuses: tuple[str, ...] = ()
    owner: str | None = None
    service: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None
    parent: str | None = None
    top_level_only: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class LogFilter:
    """Which log records ``job_logs``/``list_logs`` return; ``None``/empty means "any".

    ``kinds`` are ``job`` (a job's own records, outside steps), ``step`` (inside a step)
    and ``system`` (no job). ``step`` is a step's name, so it matches every run of a step
    that ran more than once; ``span_id`` (lower-case hex) picks one run: the records of the
    step whose span it is (those in spans nested in it included), and any record emitted
    directly in that span (a log row's own ``span_id``). Lifecycle records (``event_name``
    set) are left out unless ``include_events``. Times are naive UTC, compared with the
    record's ``time``.
    """

    levels: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    job_id: str | None = None
    step: str | None = None
    span_id: str | None = None
    service: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None
    include_events: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class StatsFilter:
    """The slice ``get_stats`` summarises: jobs by ``started_at``, logs by ``time``.

    ``type``, ``owner`` and ``service`` are exact matches on the jobs' columns. With any of
    them set, the log counts are those of the matching jobs' records (records of no job
    left out), as for ``type``; ``service`` is the job's, not each record's.
    """

    type: str | None = None
    owner: str | None = None
    service: str | None = None
    since: datetime | None = None
    until: datetime | None = None


# --- rows ---------------------------------------------------------------------------------


class JobRow(TypedDict):
    """One job as listed (``GET /api/jobs``)."""

    id: str
    trace_id: str | None
    span_id: str | None
    parent_job_id: str | None
    type: str | None
    name: str | None
    operation: str | None
    owner: str | None
    service: str | None
    status: str
    progress: float | None
    current_step: str | None
    total_steps: int | None
    attempt: int | None
    started_at: str | None
    ended_at: str | None
    duration_ms: float | None
    error: str | None
    result: Any
    attributes: dict[str, Any]
    last_seen: str | None
    #: When the job was put in a queue (``job.queued``); null if it was not.
    queued_at: str | None
    child_count: int


class StepRow(TypedDict):
    """One step of a job, in order."""

    span_id: str
    seq: int | None
    name: str | None
    status: str
    started_at: str | None
    ended_at: str | None
    duration_ms: float | None
    error: str | None
    attributes: dict[str, Any]


class ChildRow(TypedDict):
    """A child job as shown under its parent."""

    id: str
    name: str | None
    type: str | None
    status: str
    started_at: str | None
    duration_ms: float | None


class JobDetail(JobRow):
    """One job with everything the detail view shows (``GET /api/jobs/{id}``)."""

    parent_span_id: str | None
    error_type: str | None
    stack_trace: str | None
    cancel_reason: str | None
    logs_dropped: int
    steps: list[StepRow]
    children: list[ChildRow]
    log_counts: dict[str, int]


class LogRow(TypedDict):
    """One log record; ``data`` is its attributes without the well-known keys."""

    id: int
    time: str | None
    level: str | None
    severity_number: int | None
    severity_text: str | None
    message: str | None
    data: dict[str, Any]
    job_id: str | None
    step: str | None
    step_span_id: str | None
    category: str | None
    iostream: str | None
    exception_type: str | None
    exception_message: str | None
    stack_trace: str | None
    trace_id: str | None
    span_id: str | None
    event_name: str | None
    service: str | None


class JobPage(TypedDict):
    """A page of jobs, newest first; pass ``next_cursor`` back for the next page."""

    jobs: list[JobRow]
    next_cursor: str | None


class JobLogsPage(TypedDict):
    """A job and a page of its logs; poll with ``after_id=next_after_id``."""

    job: JobRow
    logs: list[LogRow]
    next_after_id: int | None


class LogsPage(TypedDict):
    """A page of logs in id order; poll with ``after_id=next_after_id``."""

    logs: list[LogRow]
    next_after_id: int | None


class DurationStats(TypedDict):
    """Job durations in milliseconds (finished jobs only)."""

    avg: float | None
    p50: float | None
    p95: float | None


class JobStats(TypedDict):
    """Job counts of the stats slice."""

    total: int
    by_status: dict[str, int]
    by_type: dict[str, dict[str, int]]
    success_rate: float | None
    duration_ms: DurationStats


class LogStats(TypedDict):
    """Log counts of the stats slice (lifecycle records excluded)."""

    total: int
    by_level: dict[str, int]
    by_category: dict[str, int]


class RecentError(TypedDict):
    """A recently failed job."""

    id: str
    name: str | None
    type: str | None
    error: str | None
    error_type: str | None
    ended_at: str | None


class Bucket(TypedDict):
    """Jobs started in ``[start, start + bucket)``."""

    start: str
    total: int
    completed: int
    failed: int


class Stats(TypedDict):
    """``GET /api/stats``."""

    jobs: JobStats
    logs: LogStats
    recent_errors: list[RecentError]
    bucket: str
    buckets: list[Bucket]


class SpanRow(TypedDict):
    """One span of a trace."""

    span_id: str
    parent_span_id: str | None
    name: str | None
    kind: int | None
    start_time: str | None
    end_time: str | None
    duration_ms: float | None
    status_code: int | None
    status_message: str | None
    service: str | None
    attributes: dict[str, Any]
    events: list[Any]


class Trace(TypedDict):
    """Every span of a trace, by start time (``truncated`` if the cap was hit)."""

    trace_id: str
    spans: list[SpanRow]
    truncated: bool
