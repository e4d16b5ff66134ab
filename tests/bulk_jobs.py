"""Many finished (or running) jobs written with plain SQL, for retention and size tests.

Each job has a step, four spans (job, step, two HTTP calls under the step) and its logs, laid
out as the writer lays them out: log ids in arrival order, summaries rebuilt after.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from jobtrail.storage.schema import fill_search_text, rebuild_log_summaries

BASE = datetime(2026, 1, 1)


def bulk_load(
    con: duckdb.DuckDBPyConnection,
    *,
    prefix: str,
    jobs: int,
    first_end: datetime,
    every_s: float,
    logs_per_job: int = 20,
    status: str = "completed",
    body_md5s: int = 1,
) -> None:
    """``jobs`` finished jobs ending ``every_s`` apart, each with a step, 4 spans and logs.

    Logs go in id order (job by job); ``body_md5s`` lengthens each body by that many hashes.
    """
    p = {"prefix": prefix, "n": jobs, "t0": first_end, "every": every_s, "status": status}
    job_rows = """
        SELECT $prefix || i AS id, md5($prefix || i) AS trace_id,
               substr(md5('j' || $prefix || i), 1, 16) AS span_id,
               substr(md5('s' || $prefix || i), 1, 16) AS step_span,
               $t0 + to_microseconds(CAST(i * $every * 1e6 AS BIGINT)) AS ended
        FROM range($n) r(i)"""
    con.execute(
        f"""INSERT INTO jobs (id, trace_id, span_id, type, name, status, started_at, ended_at,
                              last_seen, span_received)
            SELECT id, trace_id, span_id, 'bulk', id, $status, ended - INTERVAL 1 MINUTE, ended,
                   ended, true FROM ({job_rows})""",
        p,
    )
    fill_search_text(con)
    p.pop("status")
    con.execute(
        f"""INSERT INTO steps (trace_id, span_id, parent_span_id, job_id, seq, name, status,
                               started_at, ended_at)
            SELECT trace_id, step_span, span_id, id, 1, 'work', 'completed', ended, ended
            FROM ({job_rows})""",
        p,
    )
    con.execute(
        f"""INSERT INTO spans (trace_id, span_id, parent_span_id, name, start_time, end_time,
                               received_at)
            SELECT trace_id, span_id, NULL, id, ended, ended, ended FROM ({job_rows})
            UNION ALL SELECT trace_id, step_span, span_id, 'work', ended, ended, ended
            FROM ({job_rows})
            UNION ALL SELECT trace_id, substr(md5(k || step_span), 1, 16), step_span, 'GET',
                             ended, ended, ended FROM ({job_rows}), range(2) q(k)""",
        p,
    )
    row = con.execute("SELECT coalesce(max(id), 0) FROM logs").fetchone()
    con.execute(
        """INSERT INTO logs (id, time, trace_id, span_id, severity_number, level, body, job_id,
                             received_at)
            SELECT $first + i * $per + k, $t0 + to_microseconds(CAST(i * $every * 1e6 AS BIGINT)),
                   md5($prefix || i), substr(md5('j' || $prefix || i), 1, 16), 9, 'info',
                   'record ' || k || ' of ' || $prefix || i || ':'
                   || (SELECT string_agg(md5(m || k || $prefix || i), ' ') FROM range($md5s) b(m)),
                   $prefix || i, $t0 + to_microseconds(CAST(i * $every * 1e6 AS BIGINT))
            FROM range($n) r(i), range($per) q(k)
            ORDER BY i, k""",
        {**p, "per": logs_per_job, "first": row[0] + 1, "md5s": body_md5s},
    )
    rebuild_log_summaries(con)
