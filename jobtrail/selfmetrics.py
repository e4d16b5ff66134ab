"""``GET /metrics``: the collector's own counters in Prometheus text format."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from aiohttp import web

from jobtrail.collector import ReceiverStats
from jobtrail.storage import Database
from jobtrail.storage.retention import RetentionStats
from jobtrail.storage.writer import BatchWriter


def render(
    stats: ReceiverStats,
    writer: BatchWriter,
    db: Database,
    retention: RetentionStats | None = None,
) -> str:
    """The exposition text; one family per counter, labelled by signal."""
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {value}" for labels, value in samples)

    family(
        "jobtrail_requests_total", "counter", "OTLP Export requests by transport and signal.",
        [(f'{{transport="{t}",signal="{s}"}}', n) for (t, s), n in sorted(stats.requests.items())],
    )  # fmt: skip
    for name, counter, help_text in (
        ("jobtrail_records_received_total", stats.received, "Records received."),
        ("jobtrail_records_stored_total", stats.stored, "Records committed to the database."),
        ("jobtrail_records_rejected_total", stats.rejected, "Records rejected as invalid."),
        ("jobtrail_records_refused_total", stats.refused, "Records refused by backpressure."),
        ("jobtrail_requests_refused_total", stats.refused_requests, "Requests refused (busy)."),
        ("jobtrail_requests_invalid_total", stats.invalid, "Undecodable requests."),
    ):
        family(
            name,
            "counter",
            help_text,
            [(f'{{signal="{s}"}}', n) for s, n in sorted(counter.items())],
        )
    family("jobtrail_queue_records", "gauge", "Records accepted, not yet committed.",
           [("", writer.queued_records)])  # fmt: skip
    family("jobtrail_commits_total", "counter", "Group commits.", [("", writer.commits)])
    hist = writer.commit_seconds
    samples: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip((*hist.bounds, float("inf")), hist.counts, strict=True):
        running += count
        samples.append((f'_bucket{{le="{"+Inf" if bound == float("inf") else bound}"}}', running))
    samples += [("_sum", hist.total_s), ("_count", hist.count)]
    lines.append("# HELP jobtrail_commit_seconds Time to store and commit one group of batches.")
    lines.append("# TYPE jobtrail_commit_seconds histogram")
    lines.extend(f"jobtrail_commit_seconds{suffix} {value}" for suffix, value in samples)
    family("jobtrail_queue_bytes", "gauge", "Bytes accepted, not yet committed.",
           [("", writer.queued_bytes)])  # fmt: skip
    size = os.path.getsize(db.path) if db.path != ":memory:" and os.path.exists(db.path) else 0
    family("jobtrail_database_bytes", "gauge", "Size of the database file.", [("", size)])
    if retention is not None:
        family("jobtrail_retention_passes_total", "counter", "Retention passes finished.",
               [("", retention.passes)])  # fmt: skip
        family("jobtrail_retention_failures_total", "counter", "Retention passes that failed.",
               [("", retention.failures)])  # fmt: skip
        family(
            "jobtrail_retention_removed_rows_total", "counter", "Rows retention removed, by table.",
            [(f'{{table="{t}"}}', n) for t, n in sorted(retention.removed.items())],
        )  # fmt: skip
        family("jobtrail_retention_last_pass_seconds", "gauge", "Duration of the last pass.",
               [("", retention.last_duration_s)])  # fmt: skip
    return "\n".join(lines) + "\n"


def metrics_handler(
    stats: ReceiverStats,
    writer: BatchWriter,
    db: Database,
    retention: RetentionStats | None = None,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler serving :func:`render`."""

    async def handler(_: web.Request) -> web.Response:
        text = render(stats, writer, db, retention)
        return web.Response(text=text, content_type="text/plain")

    return handler
