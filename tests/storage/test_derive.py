"""Merge rules of derived job rows: spans settle, attempts supersede, late records fill in."""

from __future__ import annotations

from datetime import datetime, timedelta

from jobtrail.storage.derive import merge_job, new_job_row
from jobtrail.storage.model import JobUpdate

T0 = datetime(2026, 1, 1, 12, 0, 0)


def _span(attempt: int, status: str, start_s: int, end_s: int, **kw: object) -> JobUpdate:
    return JobUpdate(
        id="j", final=True, seen_at=T0 + timedelta(seconds=end_s), attempt=attempt,
        status=status, started_at=T0 + timedelta(seconds=start_s),
        ended_at=T0 + timedelta(seconds=end_s), duration_ms=(end_s - start_s) * 1000.0,
        span_id=f"s{attempt}", **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def _started(attempt: int, at_s: int) -> JobUpdate:
    return JobUpdate(
        id="j", final=False, seen_at=T0 + timedelta(seconds=at_s), attempt=attempt,
        status="running", started_at=T0 + timedelta(seconds=at_s),
    )  # fmt: skip


def test_retry_goes_retrying_then_running_then_completed() -> None:
    row = new_job_row("j")
    merge_job(row, _started(1, 0))
    merge_job(row, _span(1, "retrying", 0, 2, error="timeout"))
    assert row["status"] == "retrying" and row["error"] == "timeout"
    merge_job(row, _started(2, 3))
    assert row["status"] == "running" and row["attempt"] == 2 and row["error"] is None
    merge_job(row, _span(2, "completed", 3, 5))
    assert row["status"] == "completed" and row["progress"] == 100.0
    assert [(a["attempt"], a["status"]) for a in row["attempts"]] == [(1, "failed"), (2, "completed")]
    assert row["started_at"] == T0 and row["duration_ms"] == 5000.0


def test_late_earlier_attempt_does_not_override() -> None:
    row = new_job_row("j")
    merge_job(row, _span(2, "completed", 3, 5))
    merge_job(row, _span(1, "retrying", 0, 2, error="timeout"))
    assert row["status"] == "completed" and row["attempt"] == 2 and row["error"] is None
    assert [a["attempt"] for a in row["attempts"]] == [1, 2]
    assert row["started_at"] == T0


def test_lifecycle_after_span_only_fills_gaps() -> None:
    row = new_job_row("j")
    merge_job(row, _span(1, "completed", 0, 2))
    late = _started(1, 0)
    late.owner = "ann"
    merge_job(row, late)
    assert row["status"] == "completed" and row["owner"] == "ann"
    assert len(row["attempts"]) == 1


def test_duplicate_span_is_idempotent() -> None:
    row = new_job_row("j")
    merge_job(row, _span(1, "failed", 0, 2, error="x"))
    once = dict(row)
    merge_job(row, _span(1, "failed", 0, 2, error="x"))
    assert row == once
