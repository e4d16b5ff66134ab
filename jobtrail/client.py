"""A small synchronous client of the jobtrail API, and the terminal views the CLI prints.

The client uses only the standard library (``urllib``) so ``jobtrail jobs`` works wherever
the package is installed. Every ``cmd_*`` function prints either JSON (``json_output``,
for scripts and ``jq``) or rich tables, and returns a process exit code: ``0`` on success,
``1`` when the API answered with an error (unknown job, bad parameter) and ``2`` when it
could not be reached. Errors are one line on stderr, never a traceback.

Example:
    >>> from jobtrail import client
    >>> client.cmd_jobs("http://127.0.0.1:8080", status="failed", limit=20)  # doctest: +SKIP
    0
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, cast

from rich.console import Console

from jobtrail._views import render_job, render_jobs, render_logs, render_stats

_DEFAULT_TIMEOUT_S = 10.0
_STREAM_TIMEOUT_S = 45.0  # above the server's 15 s keepalive
_TOKEN_ENV = "JOBTRAIL_TOKEN"


class ApiError(Exception):
    """The API answered with an error (``status`` and the JSON error's ``code``)."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ApiUnreachable(Exception):
    """No HTTP answer at all: wrong URL, server down, TLS or network failure."""


class ApiClient:
    """GET JSON from a jobtrail API.

    Args:
        base_url: Where the API listens, e.g. ``http://127.0.0.1:8080``.
        token: Bearer token for servers with API auth (default: ``$JOBTRAIL_TOKEN``).
        timeout_s: Per-request timeout.

    Example:
        >>> ApiClient("http://127.0.0.1:8080").get("/api/jobs", limit=5)  # doctest: +SKIP
    """

    def __init__(
        self, base_url: str, *, token: str | None = None, timeout_s: float = _DEFAULT_TIMEOUT_S
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token if token is not None else os.environ.get(_TOKEN_ENV) or None
        self.timeout_s = timeout_s

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` with query ``params`` (``None`` values dropped); the decoded JSON.

        Raises:
            ApiError: The API answered with an error status.
            ApiUnreachable: No answer.
        """
        with self._open(path, params, accept="application/json") as response:
            try:
                return json.load(response)
            except (OSError, ValueError) as exc:
                raise self._unreachable(exc) from None

    def open_stream(
        self,
        path: str,
        *,
        last_event_id: int | None = None,
        timeout_s: float = _STREAM_TIMEOUT_S,
        **params: Any,
    ) -> http.client.HTTPResponse:
        """Open a Server-Sent Events stream; the caller reads (and closes) the response.

        ``timeout_s`` bounds each read, so keep it above the server's keepalive interval.

        Example:
            >>> with ApiClient(url).open_stream("/api/jobs/stream") as resp:  # doctest: +SKIP
            ...     first_line = resp.readline()

        Raises:
            ApiError: The API answered with an error status.
            ApiUnreachable: No answer.
        """
        headers = {"Cache-Control": "no-cache"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        return self._open(
            path, params, accept="text/event-stream", headers=headers, timeout_s=timeout_s
        )

    def _open(
        self,
        path: str,
        params: dict[str, Any],
        *,
        accept: str,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> http.client.HTTPResponse:
        query = {k: _param(v) for k, v in params.items() if v is not None and v is not False}
        url = self.base_url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(url, headers={"Accept": accept, **(headers or {})})
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310
        except urllib.error.HTTPError as exc:
            raise _api_error(exc) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise self._unreachable(exc) from None
        return cast(http.client.HTTPResponse, response)

    def _unreachable(self, exc: Exception) -> ApiUnreachable:
        reason = getattr(exc, "reason", exc)
        return ApiUnreachable(f"cannot reach the jobtrail API at {self.base_url}: {reason}")

    def job(self, job_id: str) -> Any:
        """``GET /api/jobs/{id}``."""
        return self.get(f"/api/jobs/{_quote(job_id)}")

    def job_logs(self, job_id: str, **params: Any) -> Any:
        """``GET /api/jobs/{id}/logs``."""
        return self.get(f"/api/jobs/{_quote(job_id)}/logs", **params)


def _param(value: Any) -> str:
    if value is True:
        return "true"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def _api_error(exc: urllib.error.HTTPError) -> ApiError:
    code, message = "http_error", f"HTTP {exc.code} {exc.reason}"
    try:
        body = json.loads(exc.read() or b"null")
        code = body["error"]["code"]
        message = body["error"]["message"]
    except (ValueError, TypeError, KeyError):
        pass
    finally:
        exc.close()
    if exc.code == 401:
        message += f" (set ${_TOKEN_ENV})"
    return ApiError(message, status=exc.code, code=code)


def _emit_json(console: Console, data: Any) -> None:
    console.file.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def report_error(exc: ApiError | ApiUnreachable) -> int:
    """Print ``exc`` as one line on stderr; the exit code (1 API error, 2 unreachable)."""
    if isinstance(exc, ApiError):
        print(f"jobtrail: {exc}", file=sys.stderr)
        return 1
    print(
        f"jobtrail: {exc} (is `jobtrail serve` running? set --api or $JOBTRAIL_API)",
        file=sys.stderr,
    )
    return 2


def _run(
    console: Console | None,
    render: Callable[[Console, Any], None],
    fetch: Callable[[], Any],
    json_output: bool,
) -> int:
    """Fetch, then print JSON or the rich view; map failures to one line and an exit code."""
    out = console or Console()
    try:
        data = fetch()
    except (ApiError, ApiUnreachable) as exc:
        return report_error(exc)
    if json_output:
        _emit_json(out, data)
    else:
        render(out, data)
    return 0


# --- commands -----------------------------------------------------------------------------


def cmd_jobs(
    base_url: str,
    *,
    type: str | None = None,  # noqa: A002 - the API's parameter name
    status: str | None = None,
    owner: str | None = None,
    service: str | None = None,
    since: str | None = None,
    until: str | None = None,
    q: str | None = None,
    parent: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    watch: bool = False,
    json_output: bool = False,
    console: Console | None = None,
    token: str | None = None,
    timeout_s: float = _DEFAULT_TIMEOUT_S,
) -> int:
    """Print recent jobs, newest first (``GET /api/jobs``), or watch the running ones.

    Args:
        base_url: The API's base URL.
        type: Only jobs of this type.
        status: Comma list of statuses (``failed,running``).
        owner: Only jobs of this owner.
        service: Only jobs of this service.
        since: RFC 3339 time, date, or age like ``24h`` / ``7d``.
        until: Same forms as ``since``.
        q: Text search in name, id, type and error.
        parent: Only children of this job id; ``none`` for top-level jobs.
        limit: Page size (1-1000).
        cursor: ``next_cursor`` of a previous page (printed under the table).
        watch: Show a live table of running and pending jobs (filtered by ``type`` only)
            until Ctrl-C; with ``json_output``, one JSON line per job event instead.
        json_output: Print the API's JSON instead of a table.
        console: Where to print (tests); default stdout.
        token: Bearer token (default ``$JOBTRAIL_TOKEN``).
        timeout_s: HTTP timeout.

    Returns:
        0 on success, 1 on an API error, 2 when the API is unreachable, 130 after Ctrl-C.
    """
    api = ApiClient(base_url, token=token, timeout_s=timeout_s)
    if watch:
        from jobtrail._follow import watch_jobs

        return watch_jobs(api, type=type, json_output=json_output, console=console)
    params = {
        "type": type,
        "status": status,
        "owner": owner,
        "service": service,
        "since": since,
        "until": until,
        "q": q,
        "parent": parent,
        "limit": limit,
        "cursor": cursor,
    }
    return _run(console, render_jobs, lambda: api.get("/api/jobs", **params), json_output)


def cmd_job(
    base_url: str,
    job_id: str,
    *,
    json_output: bool = False,
    console: Console | None = None,
    token: str | None = None,
    timeout_s: float = _DEFAULT_TIMEOUT_S,
) -> int:
    """Print one job: its fields, steps, child jobs, error and result (``GET /api/jobs/{id}``).

    Args:
        base_url: The API's base URL.
        job_id: The job's id.
        json_output: Print the API's JSON instead of tables.
        console: Where to print (tests); default stdout.
        token: Bearer token (default ``$JOBTRAIL_TOKEN``).
        timeout_s: HTTP timeout.

    Returns:
        0 on success, 1 on an API error (e.g. unknown job), 2 when unreachable.
    """
    api = ApiClient(base_url, token=token, timeout_s=timeout_s)
    return _run(console, render_job, lambda: api.job(job_id), json_output)


def cmd_logs(
    base_url: str,
    job_id: str,
    *,
    level: str | None = None,
    step: str | None = None,
    q: str | None = None,
    after_id: int | None = None,
    limit: int = 1000,
    events: bool = False,
    follow: bool = False,
    span_id: str | None = None,
    json_output: bool = False,
    console: Console | None = None,
    token: str | None = None,
    timeout_s: float = _DEFAULT_TIMEOUT_S,
) -> int:
    """Print a job's log records in order (``GET /api/jobs/{id}/logs``), or follow them.

    Args:
        base_url: The API's base URL.
        job_id: The job's id.
        level: Comma list of levels (``warn,error``).
        step: Only records of this step.
        q: Case-insensitive text search in message and data.
        span_id: Only records of this run of a step (its span id, as in ``jobtrail job``).
        after_id: Only records after this id (continue where a previous call stopped).
        limit: Most records to fetch (1-10000).
        events: Include lifecycle records (``job.started``, ``job.progress``, ...).
        follow: Print the records so far, then new ones as they arrive until the job ends,
            then its final status (``after_id`` and ``limit`` are ignored). With
            ``json_output``, one JSON line per record, then the job as the last line.
        json_output: Print the API's JSON instead of log lines.
        console: Where to print (tests); default stdout.
        token: Bearer token (default ``$JOBTRAIL_TOKEN``).
        timeout_s: HTTP timeout.

    Returns:
        0 on success, 1 on an API error (unknown job, bad level), 2 when unreachable.
        When following: 0 if the job completed, 1 if it failed, was cancelled or is lost,
        130 after Ctrl-C.
    """
    api = ApiClient(base_url, token=token, timeout_s=timeout_s)
    if follow:
        from jobtrail._follow import follow_logs

        return follow_logs(
            api, job_id, level=level, step=step, q=q, events=events, span_id=span_id,
            json_output=json_output, console=console,
        )  # fmt: skip
    params = {
        "level": level,
        "step": step,
        "span_id": span_id,
        "q": q,
        "after_id": after_id,
        "limit": limit,
        "events": events,
    }
    return _run(console, render_logs(limit), lambda: api.job_logs(job_id, **params), json_output)


def cmd_stats(
    base_url: str,
    *,
    type: str | None = None,  # noqa: A002 - the API's parameter name
    owner: str | None = None,
    service: str | None = None,
    since: str | None = None,
    until: str | None = None,
    bucket: str | None = None,
    json_output: bool = False,
    console: Console | None = None,
    token: str | None = None,
    timeout_s: float = _DEFAULT_TIMEOUT_S,
) -> int:
    """Print job and log statistics (``GET /api/stats``).

    Args:
        base_url: The API's base URL.
        type: Only jobs of this type (and their logs).
        owner: Only jobs of this owner (and their logs).
        service: Only jobs of this service (and their logs).
        since: RFC 3339 time, date, or age like ``24h`` / ``7d``.
        until: Same forms as ``since``.
        bucket: Bucket size of the timeline (``5m``, ``1h``, ``1d``); default chosen by the API.
        json_output: Print the API's JSON instead of tables.
        console: Where to print (tests); default stdout.
        token: Bearer token (default ``$JOBTRAIL_TOKEN``).
        timeout_s: HTTP timeout.

    Returns:
        0 on success, 1 on an API error (bad parameter), 2 when unreachable.
    """
    api = ApiClient(base_url, token=token, timeout_s=timeout_s)
    params = dict(type=type, owner=owner, service=service, since=since, until=until, bucket=bucket)
    return _run(console, render_stats, lambda: api.get("/api/stats", **params), json_output)
