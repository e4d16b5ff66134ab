"""Periodic changes the writer makes on its own: jobs that stopped showing signs of life.

A running job sends lifecycle records (``job.started``, ``job.progress``, ``job.heartbeat``)
that move ``last_seen``. When a process is killed those stop, and the span that would settle
the job never comes: after ``timeout`` the job is shown as ``lost``, keeping ``last_seen`` as
its last sign of life. Its span arriving later still settles it (``lost`` is not final).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb


def mark_lost(
    con: duckdb.DuckDBPyConnection, timeout_s: float, *, now: datetime | None = None
) -> list[str]:
    """Mark running/pending jobs silent for longer than ``timeout_s`` as lost; return their ids."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    cutoff = now - timedelta(seconds=timeout_s)
    # Read the ids, then update without RETURNING: in one transaction on the only writing
    # connection both see the same rows, and DuckDB's RETURNING made a catch-up of 40k
    # jobs (after downtime) take 24 s instead of 0.7 s, stalling ingest meanwhile.
    # A queued job waits for a worker, silent by nature: it is never lost before it starts.
    silent = """(status IN ('running', 'pending') AND NOT span_received OR status = 'retrying')
                AND NOT (status = 'pending' AND queued_at IS NOT NULL) AND last_seen < ?"""
    rows = con.execute(f"SELECT id FROM jobs WHERE {silent}", [cutoff]).fetchall()  # noqa: S608
    if rows:
        con.execute(f"UPDATE jobs SET status = 'lost' WHERE {silent}", [cutoff])  # noqa: S608
    return [r[0] for r in rows]


def forget_old_requests(con: duckdb.DuckDBPyConnection, *, keep_s: float = 86_400.0) -> int:
    """Forget request digests older than ``keep_s`` (clients stop retrying long before)."""
    cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=keep_s)
    rows = con.execute(
        "DELETE FROM ingested_requests WHERE received_at < ? RETURNING 1", [cutoff]
    ).fetchall()
    return len(rows)
