"""Live terminal views: ``jobtrail logs --follow`` and ``jobtrail jobs --watch``.

Both read the API's Server-Sent Events with the standard library (a streaming ``urllib``
response read line by line). A dropped stream is resumed with ``Last-Event-ID`` after a
short backoff, a bounded number of times in a row; the server's ids only grow, so a resumed
stream neither loses nor repeats a log record. Ctrl-C ends either view quietly (exit 130).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from jobtrail._views import print_log, render_final, render_watch
from jobtrail.client import ApiClient, ApiError, ApiUnreachable, report_error

logger = logging.getLogger(__name__)

_RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_RETRIES = 6
_FIRST_BACKOFF_S = 0.25
_MAX_BACKOFF_S = 8.0
_PAGE_LIMIT = 10_000
_POLL_INTERVAL_S = 2.0
_LINGER_S = 5.0
_MAX_VANISHED_FETCHES = 50
_ACTIVE_STATUSES = "pending,running,retrying"
#: Statuses that end ``logs --follow``; ``lost`` is not final on the server, but it means
#: the job went silent, so following it further would wait for nothing.
_END_STATUSES = frozenset({"completed", "failed", "cancelled", "lost"})
_STREAM_ERRORS = (ApiUnreachable, OSError, http.client.HTTPException)


@dataclass(frozen=True)
class SseEvent:
    """One Server-Sent Event: its ``event`` name, ``id`` (if any) and decoded JSON ``data``."""

    event: str
    id: int | None
    data: Any


def read_sse(lines: Iterable[bytes]) -> Iterator[SseEvent]:
    """Parse a Server-Sent Events byte stream into events (comments and ``retry:`` skipped).

    Example:
        >>> list(read_sse([b"id: 3\\n", b"event: log\\n", b'data: {"a": 1}\\n', b"\\n"]))
        [SseEvent(event='log', id=3, data={'a': 1})]
    """
    event, event_id, data = "message", None, list[str]()
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                try:
                    yield SseEvent(event, event_id, json.loads("\n".join(data)))
                except ValueError:
                    logger.warning("skipping an event with malformed data: %.200s", data)
            event, event_id, data = "message", None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            with contextlib.suppress(ValueError):
                event_id = int(value)


def _backoff_s(failures: int) -> float:
    return float(min(_MAX_BACKOFF_S, _FIRST_BACKOFF_S * 2 ** (failures - 1)))


def _print_line(console: Console, data: Any) -> None:
    console.file.write(json.dumps(data, ensure_ascii=False) + "\n")
    console.file.flush()


# --- logs --follow ------------------------------------------------------------------------


class _LogFollower:
    """Prints a job's records once each, remembering the last id for ``Last-Event-ID``."""

    def __init__(self, console: Console, *, json_output: bool) -> None:
        self.console = console
        self.json_output = json_output
        self.last_id = 0

    def print(self, record: dict[str, Any]) -> None:
        record_id = int(record.get("id") or 0)
        if record_id and record_id <= self.last_id:
            return  # already printed before a reconnect
        self.last_id = max(self.last_id, record_id)
        if self.json_output:
            _print_line(self.console, record)
        else:
            print_log(self.console, record)


def follow_logs(
    api: ApiClient,
    job_id: str,
    *,
    level: str | None = None,
    step: str | None = None,
    q: str | None = None,
    events: bool = False,
    span_id: str | None = None,
    json_output: bool = False,
    console: Console | None = None,
) -> int:
    """Print a job's logs so far, then follow them live until it ends; its final status last.

    Example:
        >>> follow_logs(ApiClient("http://127.0.0.1:8080"), "job-id")  # doctest: +SKIP
        0

    Returns:
        0 if the job completed; 1 if it failed, was cancelled or is lost, or on an API
        error; 2 when the API is unreachable (after the retries); 130 after Ctrl-C.
    """
    out = console or Console()
    follower = _LogFollower(out, json_output=json_output)
    params = {"level": level, "step": step, "span_id": span_id, "q": q, "events": events}
    try:
        job = _print_existing(api, job_id, params, follower)
        status = str(job.get("status"))
        if status not in _END_STATUSES:
            status, job = _follow_stream(api, job_id, params, follower, job)
        with contextlib.suppress(ApiError, ApiUnreachable):
            job = api.job(job_id)  # the final row: duration, error, cancel reason
    except (ApiError, ApiUnreachable) as exc:
        return report_error(exc)
    except KeyboardInterrupt:
        return 130
    job = {**job, "status": status}
    if json_output:
        _print_line(out, job)
    else:
        render_final(out, job)
    return 0 if status == "completed" else 1


def _print_existing(
    api: ApiClient, job_id: str, params: dict[str, Any], follower: _LogFollower
) -> dict[str, Any]:
    """Print every record so far (page by page); the job row."""
    while True:
        page = api.job_logs(job_id, after_id=follower.last_id or None, limit=_PAGE_LIMIT, **params)
        for record in page["logs"]:
            follower.print(record)
        if len(page["logs"]) < _PAGE_LIMIT:
            return dict(page["job"])


def _follow_stream(
    api: ApiClient,
    job_id: str,
    params: dict[str, Any],
    follower: _LogFollower,
    job: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    """Follow ``/api/jobs/{id}/stream``, resuming after drops; the final status and job row."""
    path = f"/api/jobs/{urllib.parse.quote(job_id, safe='')}/stream"
    failures = 0
    while True:
        try:
            with api.open_stream(path, last_event_id=follower.last_id, **params) as response:
                for event in read_sse(response):
                    failures = 0
                    if event.event == "log":
                        follower.print(event.data)
                    elif event.event == "job":
                        job = dict(event.data)
                        if job.get("status") == "lost":
                            return "lost", job
                    elif event.event == "end":
                        return str(event.data.get("status") or job.get("status")), job
                    elif event.event == "resume":
                        logger.debug("server asked to resume after id %d", follower.last_id)
                        break
        except ApiError as exc:
            if exc.status not in _RETRYABLE_STATUSES:
                raise
            reason: object = exc
        except _STREAM_ERRORS as exc:
            reason = exc
        else:
            reason = "stream closed"
        failures += 1
        if failures > _MAX_RETRIES:
            raise ApiUnreachable(
                f"lost the live stream of job {job_id} after {_MAX_RETRIES} retries: {reason}"
            )
        logger.debug("stream of job %s dropped (%s); retry %d", job_id, reason, failures)
        time.sleep(_backoff_s(failures))


# --- jobs --watch -------------------------------------------------------------------------


class _JobBoard:
    """The watched jobs, shared by the reading thread and the ``Live`` refresh thread.

    Active jobs stay until they finish; finished ones stay :data:`_LINGER_S` more so their
    final status can be seen. ``emit`` (JSON mode) receives each row that changed.
    """

    def __init__(self, emit: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.note = ""
        self._emit = emit
        self._jobs: dict[str, dict[str, Any]] = {}
        self._finished_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def apply(self, job: dict[str, Any]) -> None:
        """One job event (or fetched row): update, add or finish the job."""
        with self._lock:
            known = self._jobs.get(job["id"])
            if known == job:
                return
            active = job.get("status") in _ACTIVE_STATUSES.split(",")
            if known is None and not active and self._emit is None:
                return  # a job that was never shown as running
            self._jobs[job["id"]] = job
            if active:
                self._finished_at.pop(job["id"], None)
            else:
                self._finished_at.setdefault(job["id"], time.monotonic())
            self._prune()
        if self._emit is not None:
            self._emit(job)

    def _prune(self) -> None:
        """Forget jobs that finished more than :data:`_LINGER_S` ago (lock held)."""
        now = time.monotonic()
        for job_id, at in list(self._finished_at.items()):
            if now - at > _LINGER_S:
                del self._finished_at[job_id]
                self._jobs.pop(job_id, None)

    def refresh(self, jobs: list[dict[str, Any]], fetch: Callable[[str], Any] | None) -> None:
        """Apply a fresh list of active jobs; ``fetch`` the ones that left it since."""
        for job in jobs:
            self.apply(job)
        listed = {job["id"] for job in jobs}
        with self._lock:
            vanished = [i for i in self._jobs if i not in listed and i not in self._finished_at]
        if fetch is None:
            return
        for job_id in vanished[:_MAX_VANISHED_FETCHES]:
            try:
                self.apply(dict(fetch(job_id)))
            except ApiError:
                with self._lock:
                    self._finished_at.setdefault(job_id, time.monotonic())

    def __rich__(self) -> Table:
        with self._lock:
            self._prune()
            jobs = list(self._jobs.values())
        jobs.sort(key=lambda j: (j.get("started_at") or "~", j["id"]))  # not started: last
        return render_watch(jobs, note=self.note)


def watch_jobs(
    api: ApiClient,
    *,
    type: str | None = None,  # noqa: A002 - the API's parameter name
    json_output: bool = False,
    console: Console | None = None,
) -> int:
    """A live table of active jobs from ``/api/jobs/stream``, until Ctrl-C.

    The list is fetched once, then each job event updates it; while the stream is down the
    list is re-fetched every :data:`_POLL_INTERVAL_S` seconds. With ``json_output``, one JSON
    line per job event (starting with the active jobs) instead of the table.

    Example:
        >>> watch_jobs(ApiClient("http://127.0.0.1:8080"), type="import")  # doctest: +SKIP
        130

    Returns:
        130 after Ctrl-C; 1 on an API error, 2 when unreachable at the start.
    """
    out = console or Console()
    board = _JobBoard(emit=(lambda job: _print_line(out, job)) if json_output else None)

    def list_jobs() -> list[dict[str, Any]]:
        page = api.get("/api/jobs", status=_ACTIVE_STATUSES, type=type, limit=1000)
        return list(page["jobs"])

    try:
        board.refresh(list_jobs(), fetch=None)
    except (ApiError, ApiUnreachable) as exc:
        return report_error(exc)
    live: contextlib.AbstractContextManager[Any] = (
        contextlib.nullcontext() if json_output else Live(board, console=out, refresh_per_second=4)
    )
    try:
        with live:
            _watch(api, board, list_jobs, type=type)
    except KeyboardInterrupt:
        return 130
    return 0  # pragma: no cover - _watch only returns by Ctrl-C


def _watch(
    api: ApiClient,
    board: _JobBoard,
    list_jobs: Callable[[], list[dict[str, Any]]],
    *,
    type: str | None,  # noqa: A002
) -> None:
    use_stream = True
    while True:
        if use_stream:
            try:
                with api.open_stream("/api/jobs/stream", type=type) as response:
                    board.note = "live · Ctrl-C to exit"
                    board.refresh(list_jobs(), fetch=api.job)  # what changed before we listened
                    for event in read_sse(response):
                        if event.event == "job":
                            board.apply(dict(event.data))
                        elif event.event == "resume":
                            break
            except ApiError as exc:
                use_stream = exc.status in _RETRYABLE_STATUSES
                logger.debug("jobs stream refused: %s", exc)
            except _STREAM_ERRORS as exc:
                logger.debug("jobs stream dropped: %s", exc)
        board.note = f"no live stream; re-fetching every {_POLL_INTERVAL_S:.0f} s · Ctrl-C to exit"
        time.sleep(_POLL_INTERVAL_S)
        try:
            board.refresh(list_jobs(), fetch=api.job)
        except (ApiError, ApiUnreachable) as exc:
            board.note = f"{exc} · retrying every {_POLL_INTERVAL_S:.0f} s"
