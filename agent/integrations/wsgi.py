"""WSGI middleware (Flask, Django, any WSGI app): requests join jobs, jobs are named back.

A request with ``X-Job-ID`` (or a W3C ``traceparent`` of a job) runs attached to that job:
its logs and the jobs it starts belong there. The id of the first job the app starts
(``jobtrail.start_job`` for work that goes on in a background thread), else the attached
one, comes back in the ``X-Job-ID`` response header. The request's job context ends when
the application returns its body iterable.

Example:
    >>> from jobtrail.agent.integrations.wsgi import JobtrailWSGIMiddleware
    >>> def app(environ, start_response):
    ...     start_response("200 OK", [("Content-Type", "text/plain")])
    ...     return [b"ok"]
    >>> app = JobtrailWSGIMiddleware(app)
    >>> # Flask: flask_app.wsgi_app = JobtrailWSGIMiddleware(flask_app.wsgi_app)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .._agent import Agent
from ._http import JOB_ID_HEADER, RequestTracker

__all__ = ["JobtrailWSGIMiddleware"]

StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _environ_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


class JobtrailWSGIMiddleware:
    """Wrap a WSGI application.

    Args:
        app: The application.
        agent: The agent to record through (default: the module-level one).
        request_job_type: Also run each request that names no job as a job of this type
            (``GET /path``; a 5xx response or an exception fails it).
        header: The request/response header carrying a job id.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        agent: Agent | None = None,
        request_job_type: str | None = None,
        header: str = JOB_ID_HEADER,
    ) -> None:
        """Wrap ``app``."""
        self.app = app
        self._tracker = RequestTracker(agent, request_job_type=request_job_type, header=header)
        self._header = header

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Handle one request."""
        method = str(environ.get("REQUEST_METHOD", ""))
        path = str(environ.get("PATH_INFO", ""))
        with self._tracker.track(method, path, lambda n: environ.get(_environ_key(n))) as state:

            def start_with_job_id(
                status: str, headers: list[tuple[str, str]], exc_info: Any = None
            ) -> Callable[[bytes], object]:
                code = status.split(" ", 1)[0]
                state.set_status(int(code) if code.isdigit() else 200)
                if state.job_id:
                    headers = [*headers, (self._header, state.job_id)]
                return start_response(status, headers, exc_info)

            return self.app(environ, start_with_job_id)
