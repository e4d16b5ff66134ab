"""What retention is told (the policy) and what it tells (reports, counters), and the
callables it runs its statements through."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import duckdb

from jobtrail.storage._retention_sql import Removed

_DEFAULT_MAX_AGE_S = 30 * 86400.0
_DEFAULT_INTERVAL_S = 3600.0
_DEFAULT_CHUNK_JOBS = 200
_DEFAULT_CHUNK_ROWS = 50_000

Now = Callable[[], datetime]


class Runner(Protocol):
    """Runs ``fn(connection)`` in a transaction (or bare), like ``BatchWriter.run``."""

    def __call__(
        self, fn: Callable[[duckdb.DuckDBPyConnection], Any], *, transaction: bool = True
    ) -> Awaitable[Any]: ...


Reader = Callable[[Callable[[duckdb.DuckDBPyConnection], Any]], Awaitable[Any]]


def utc_now() -> datetime:
    """Now as the database stores times: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def naive_utc(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """What a pass removes. Durations in seconds, sizes in bytes; ``None`` turns a cap off."""

    max_age_s: float = _DEFAULT_MAX_AGE_S
    system_logs_max_age_s: float | None = None
    max_logs_per_job: int | None = None
    max_size_bytes: int | None = None
    interval_s: float = _DEFAULT_INTERVAL_S
    chunk_jobs: int = _DEFAULT_CHUNK_JOBS
    chunk_rows: int = _DEFAULT_CHUNK_ROWS

    def __post_init__(self) -> None:
        if self.max_age_s <= 0 or (self.system_logs_max_age_s or 1) <= 0:
            raise ValueError("retention ages must be positive")
        if self.max_logs_per_job is not None and self.max_logs_per_job < 2:
            raise ValueError("max_logs_per_job must be at least 2 (first and last records)")
        if self.max_size_bytes is not None and self.max_size_bytes <= 0:
            raise ValueError("max_size_bytes must be positive")
        if min(self.interval_s, self.chunk_jobs, self.chunk_rows) <= 0:
            raise ValueError("interval_s, chunk_jobs and chunk_rows must be positive")

    @property
    def logs_max_age_s(self) -> float:
        """Age limit of logs that belong to no job."""
        return self.system_logs_max_age_s or self.max_age_s

    @property
    def keep_first_last(self) -> tuple[int, int]:
        """How many records the log cap keeps from the start and from the end of a job."""
        cap = self.max_logs_per_job or 0
        return cap // 2, cap - cap // 2


@dataclass(slots=True)
class PruneReport:
    """What a pass removed, by reason (or, for a dry run, what it would remove)."""

    expired: Removed = field(default_factory=Removed)  #: finished jobs past max_age
    unowned: Removed = field(default_factory=Removed)  #: records of no job past their age
    capped: Removed = field(default_factory=Removed)  #: jobs capped, log records dropped
    oversize: Removed = field(default_factory=Removed)  #: finished jobs removed for the size
    dry_run: bool = False
    used_bytes_before: int | None = None
    used_bytes_after: int | None = None
    size_cap_met: bool | None = None
    estimated_bytes: int | None = None  #: dry run: space the removals would free, roughly
    duration_s: float = 0.0

    @property
    def total(self) -> Removed:
        """Rows removed from each table, all reasons together (capped jobs are kept)."""
        out = Removed()
        for part in (self.expired, self.unowned, self.oversize):
            out.add(part)
        out.logs += self.capped.logs
        return out

    def summary(self) -> str:
        """One line for the log."""
        parts = []
        for name, r in (("expired", self.expired), ("oversize", self.oversize)):
            if r.rows:
                parts.append(
                    f"{r.jobs} {name} jobs ({r.steps} steps, {r.logs} logs, {r.spans} spans)"
                )
        u = self.unowned
        if u.rows:
            parts.append(
                f"records of no job ({u.logs} logs, {u.spans} spans, {u.steps} steps, "
                f"{u.metrics} metric points)"
            )
        if self.capped.logs:
            parts.append(f"{self.capped.logs} logs over the cap of {self.capped.jobs} jobs")
        return "; ".join(parts) or "nothing"


@dataclass(slots=True)
class RetentionStats:
    """Counters for ``/metrics``."""

    passes: int = 0
    failures: int = 0
    removed: Counter[str] = field(default_factory=Counter)
    last_duration_s: float = 0.0
    last_pass_at: datetime | None = None
    size_cap_met: bool | None = None

    def record(self, report: PruneReport) -> None:
        """Count one finished pass."""
        self.passes += 1
        for table in ("jobs", "steps", "logs", "spans", "metrics"):
            self.removed[table] += getattr(report.total, table)
        self.last_duration_s = report.duration_s
        self.last_pass_at = utc_now()
        self.size_cap_met = report.size_cap_met
