"""Rich renderings of API responses for the terminal (``jobtrail jobs``, ``job``, ...).

Kept apart from :mod:`jobtrail.client` so the HTTP side stays small; each ``render_*``
takes the decoded JSON of one endpoint and prints it. User text is always wrapped in
``Text`` so brackets in job names are never read as rich markup.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

STATUS_STYLES = {
    "completed": "green",
    "failed": "bold red",
    "running": "cyan",
    "pending": "dim",
    "cancelled": "magenta",
    "lost": "bold yellow",
    "skipped": "dim",
}
LEVEL_STYLES = {
    "debug": "dim",
    "info": "blue",
    "success": "green",
    "warn": "yellow",
    "error": "bold red",
    "fatal": "bold white on red",
}
_ACTIVE_STATUSES = frozenset({"pending", "running", "retrying"})
_SPARK = "▁▂▃▄▅▆▇█"


def _time(value: str | None, *, ms: bool = False) -> str:
    """``2026-11-23T19:56:46.123456Z`` -> ``2026-11-23 19:56:46`` (UTC)."""
    if not value:
        return ""
    text = value.replace("T", " ").rstrip("Z")
    return text[:23] if ms else text[:19]


def duration(ms: float | None) -> str:
    """Milliseconds as a short human duration: ``850ms``, ``12.3s``, ``1m30s``, ``2h05m``."""
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms:.0f}ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f}s"
    m, s = divmod(int(s), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h}h"


def _status(status: str | None) -> Text:
    return Text(status or "", style=STATUS_STYLES.get(status or "", ""))


def _level(level: str | None) -> Text:
    return Text((level or "").upper().ljust(7), style=LEVEL_STYLES.get(level or "", ""))


def _progress(job: dict[str, Any]) -> str:
    progress = job.get("progress")
    if progress is None:
        return ""
    text = f"{progress:.0f}%"
    if job.get("current_step") and job.get("status") == "running":
        text += f" {job['current_step']}"
    return text


def _short(text: str | None, width: int = 60) -> str:
    line = (text or "").strip().splitlines()[0] if text and text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def _data(data: dict[str, Any]) -> str:
    return " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in data.items())


def render_jobs(console: Console, page: dict[str, Any]) -> None:
    """A table of jobs, with the cursor of the next page if there is one."""
    jobs = page["jobs"]
    if not jobs:
        console.print("No jobs match.")
        return
    table = Table(title="Jobs (times UTC)", title_justify="left", header_style="bold")
    for name in ("ID", "Name", "Type", "Status", "Progress", "Started", "Duration", "Owner"):
        table.add_column(name, overflow="fold" if name == "ID" else "ellipsis")
    table.add_column("Error", overflow="ellipsis", max_width=50)
    for job in jobs:
        name = job.get("name") or ""
        if job.get("child_count"):
            name += f" (+{job['child_count']})"
        table.add_row(
            Text(job["id"]),
            Text(name),
            Text(job.get("type") or ""),
            _status(job["status"]),
            _progress(job),
            _time(job.get("started_at")),
            duration(job.get("duration_ms")),
            Text(job.get("owner") or ""),
            Text(_short(job.get("error")), style="red"),
        )
    console.print(table)
    if page.get("next_cursor"):
        console.print(Text(f"More jobs: --cursor {page['next_cursor']}", style="dim"))


def render_job(console: Console, job: dict[str, Any]) -> None:
    """A job's facts, steps, child jobs, error and result."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    rows: list[tuple[str, str | Text]] = [
        ("Status", _status(job["status"])),
        ("Type", job.get("type") or ""),
        ("Operation", job.get("operation") or ""),
        ("Owner", job.get("owner") or ""),
        ("Service", job.get("service") or ""),
        ("Progress", _progress(job)),
        ("Attempt", str(job.get("attempt") or "")),
        ("Queued", _time(job.get("queued_at"))),
        ("Started", _time(job.get("started_at"))),
        ("Ended", _time(job.get("ended_at"))),
        ("Duration", duration(job.get("duration_ms"))),
        ("Parent", job.get("parent_job_id") or ""),
        ("Trace", job.get("trace_id") or ""),
        ("Cancelled", job.get("cancel_reason") or ""),
    ]
    for label, value in rows:
        if value:
            facts.add_row(label, value if isinstance(value, Text) else Text(value))
    counts = job.get("log_counts") or {}
    if counts:
        line = Text()
        for level, n in counts.items():
            line.append(f"{level} {n}  ", style=LEVEL_STYLES.get(level, ""))
        facts.add_row("Logs", line)
    title = Text(f"{job.get('name') or job['id']}  ", style="bold")
    title.append(job["id"], style="dim")
    console.print(Panel(facts, title=title, title_align="left", expand=False))
    if job.get("steps"):
        steps = Table(title="Steps", title_justify="left", header_style="bold")
        for name in ("#", "Step", "Status", "Started", "Duration", "Error", "Span"):
            steps.add_column(name)
        for step in job["steps"]:
            skipped = (step.get("attributes") or {}).get("skip_reason")
            steps.add_row(
                str(step.get("seq") or ""),
                Text(step.get("name") or ""),
                _status(step["status"]),
                _time(step.get("started_at")),
                duration(step.get("duration_ms")),
                Text(_short(step.get("error")), style="red")
                if step.get("error")
                else Text(_short(skipped), style="dim"),
                Text(step.get("span_id") or "", style="dim"),  # `jobtrail logs --span-id`
            )
        console.print(steps)
    if job.get("children"):
        children = Table(
            title=f"Child jobs ({job.get('child_count', len(job['children']))})",
            title_justify="left",
            header_style="bold",
        )
        for name in ("ID", "Name", "Type", "Status", "Started", "Duration"):
            children.add_column(name)
        for child in job["children"]:
            children.add_row(
                Text(child["id"]),
                Text(child.get("name") or ""),
                Text(child.get("type") or ""),
                _status(child["status"]),
                _time(child.get("started_at")),
                duration(child.get("duration_ms")),
            )
        console.print(children)
    if job.get("error"):
        parts: list[Text] = [Text(job["error"], style="bold red")]
        if job.get("stack_trace"):
            parts.append(Text(job["stack_trace"], style="dim"))
        console.print(
            Panel(
                Group(*parts),
                title=job.get("error_type") or "Error",
                title_align="left",
                border_style="red",
            )
        )
    if job.get("result") is not None:
        result = json.dumps(job["result"], indent=2, ensure_ascii=False)
        console.print(Panel(Text(result), title="Result", title_align="left", expand=False))


def print_log(console: Console, record: dict[str, Any]) -> None:
    """One log record: time, level (coloured), step, message, data, then any stack trace."""
    line = Text(_time(record.get("time"), ms=True) + " ", style="dim")
    line.append_text(_level(record.get("level")))
    if record.get("step"):
        line.append(f" [{record['step']}]", style="cyan")
    line.append(" " + (record.get("message") or record.get("event_name") or ""))
    if record.get("data"):
        line.append("  " + _data(record["data"]), style="dim")
    console.print(line, soft_wrap=True)
    if record.get("stack_trace"):
        console.print(Text(record["stack_trace"].rstrip(), style="red dim"))


def render_logs(limit: int) -> Callable[[Console, dict[str, Any]], None]:
    """A renderer of log pages that hints at ``--after-id`` when ``limit`` was reached."""

    def render(console: Console, page: dict[str, Any]) -> None:
        logs = page["logs"]
        if not logs:
            console.print("No log records match.")
            return
        for record in logs:
            print_log(console, record)
        if len(logs) >= limit and page.get("next_after_id") is not None:
            console.print(Text(f"More records: --after-id {page['next_after_id']}", style="dim"))

    return render


def _elapsed(job: dict[str, Any], now: datetime) -> str:
    if job.get("duration_ms") is not None:
        return duration(job["duration_ms"])
    try:
        started = datetime.fromisoformat(job["started_at"])
    except (KeyError, TypeError, ValueError):
        return ""
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return duration(max(0.0, (now - started).total_seconds() * 1000))


def render_watch(
    jobs: Sequence[dict[str, Any]], *, note: str = "", now: datetime | None = None
) -> Table:
    """The live table of ``jobtrail jobs --watch``: progress bars, current step, elapsed time."""
    now = now or datetime.now(UTC)
    active = sum(j.get("status") in _ACTIVE_STATUSES for j in jobs)
    table = Table(
        title=f"Running jobs ({active})",
        title_justify="left",
        header_style="bold",
        caption=note,
        caption_justify="left",
        caption_style="dim",
    )
    for name in ("ID", "Name", "Type", "Status", "Progress", "", "Step", "Elapsed"):
        table.add_column(name, overflow="ellipsis", no_wrap=True, justify="left")
    if not jobs:
        table.add_row("", Text("No running jobs.", style="dim"))
    for job in jobs:
        status = job.get("status")
        progress = job.get("progress")
        running = status in _ACTIVE_STATUSES
        bar = ProgressBar(
            total=100.0,
            completed=float(progress or (0 if running else 100)),
            width=20,
            pulse=running and progress is None,
            complete_style="cyan" if running else STATUS_STYLES.get(status or "", "cyan"),
        )
        table.add_row(
            Text(job["id"]),
            Text(job.get("name") or ""),
            Text(job.get("type") or ""),
            _status(status),
            bar,
            "" if progress is None else f"{progress:.0f}%",
            Text((job.get("current_step") or "") if running else ""),
            _elapsed(job, now),
        )
    return table


def render_final(console: Console, job: dict[str, Any]) -> None:
    """The last line of ``jobtrail logs --follow``: the job's final status (and error)."""
    line = Text("Job ", style="bold")
    line.append(job.get("name") or job["id"], style="bold")
    if job.get("name"):
        line.append(f" ({job['id']})", style="dim")
    line.append(" ")
    line.append_text(_status(job.get("status")))
    if job.get("duration_ms") is not None:
        line.append(f" in {duration(job['duration_ms'])}")
    if job.get("cancel_reason"):
        line.append(f": {job['cancel_reason']}", style="magenta")
    console.print(line, soft_wrap=True)
    if job.get("error"):
        console.print(Text(job["error"].rstrip(), style="bold red"), soft_wrap=True)


def render_stats(console: Console, stats: dict[str, Any]) -> None:
    """Summary panel (with a sparkline of jobs started), types, recent errors, categories."""
    jobs, logs = stats["jobs"], stats["logs"]
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    by_status = Text()
    for status, n in jobs["by_status"].items():
        by_status.append(f"{status} {n}  ", style=STATUS_STYLES.get(status, ""))
    rate = jobs["success_rate"]
    durations = jobs["duration_ms"]
    by_level = Text()
    for level, n in logs["by_level"].items():
        by_level.append(f"{level} {n}  ", style=LEVEL_STYLES.get(level, ""))
    summary.add_row("Jobs", Text(f"{jobs['total']}  ").append_text(by_status))
    summary.add_row("Success rate", "" if rate is None else f"{rate:.1%}")
    summary.add_row(
        "Duration",
        f"avg {duration(durations['avg'])}  p50 "
        f"{duration(durations['p50'])}  p95 {duration(durations['p95'])}",
    )
    summary.add_row("Logs", Text(f"{logs['total']}  ").append_text(by_level))
    if stats.get("buckets"):
        totals = [b["total"] for b in stats["buckets"]]
        top = max(totals) or 1
        spark = "".join(_SPARK[min(7, int(n / top * 7.999))] if n else " " for n in totals)
        summary.add_row(f"Started per {stats.get('bucket', '')}", Text(spark, style="cyan"))
    console.print(Panel(summary, title="Stats", title_align="left", expand=False))
    if jobs["by_type"]:
        table = Table(title="By type", title_justify="left", header_style="bold")
        for name in ("Type", "Total", "Completed", "Failed", "Running", "Success"):
            table.add_column(name, justify="left" if name == "Type" else "right")
        for job_type, c in jobs["by_type"].items():
            done = c.get("completed", 0) + c.get("failed", 0)
            rate_text = f"{c.get('completed', 0) / done:.0%}" if done else ""
            table.add_row(
                Text(job_type),
                str(c["total"]),
                str(c.get("completed", 0)),
                Text(str(c.get("failed", 0)), style="red" if c.get("failed") else ""),
                str(c.get("running", 0)),
                rate_text,
            )
        console.print(table)
    if stats["recent_errors"]:
        errors = Table(title="Recent errors", title_justify="left", header_style="bold")
        for name in ("Ended", "ID", "Name", "Type", "Error"):
            errors.add_column(name, overflow="ellipsis")
        for e in stats["recent_errors"]:
            errors.add_row(
                _time(e.get("ended_at")),
                Text(e["id"]),
                Text(e.get("name") or ""),
                Text(e.get("type") or ""),
                Text(_short(e.get("error")), style="red"),
            )
        console.print(errors)
    if logs["by_category"]:
        cats = ", ".join(f"{k} {v}" for k, v in logs["by_category"].items())
        console.print(Text(f"Log categories: {cats}", style="dim"))
