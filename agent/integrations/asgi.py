"""ASGI middleware (Starlette, FastAPI, Quart...): requests join jobs, jobs are named back.

A request with ``X-Job-ID`` (or a W3C ``traceparent`` of a job) runs attached to that job:
its logs and the jobs it starts belong there. The id of the first job the app starts
(``jobtrail.start_job`` for work that goes on in a background task), else the attached one,
comes back in the ``X-Job-ID`` response header. Other scopes (websocket, lifespan) pass
through untouched.

Example:
    >>> from jobtrail.agent.integrations.asgi import JobtrailASGIMiddleware
    >>> async def app(scope, receive, send):
    ...     pass
    >>> app = JobtrailASGIMiddleware(app)
    >>> # FastAPI/Starlette: app.add_middleware(JobtrailASGIMiddleware)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .._agent import Agent
from ._http import JOB_ID_HEADER, RequestTracker

__all__ = ["JobtrailASGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class JobtrailASGIMiddleware:
    """Wrap an ASGI application.

    Args:
        app: The application.
        agent: The agent to record through (default: the module-level one).
        request_job_type: Also run each request that names no job as a job of this type
            (``GET /path``; a 5xx response or an exception fails it).
        header: The request/response header carrying a job id.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        agent: Agent | None = None,
        request_job_type: str | None = None,
        header: str = JOB_ID_HEADER,
    ) -> None:
        """Wrap ``app``."""
        self.app = app
        self._tracker = RequestTracker(agent, request_job_type=request_job_type, header=header)
        self._header = header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for name, value in scope.get("headers") or ():
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        path = str(scope.get("path", ""))
        with self._tracker.track(
            str(scope.get("method", "")), path, lambda n: headers.get(n.lower())
        ) as state:

            async def send_with_job_id(message: Message) -> None:
                if message.get("type") == "http.response.start":
                    state.set_status(int(message.get("status", 200)))
                    if state.job_id:
                        message = dict(message)
                        message["headers"] = [
                            *(message.get("headers") or ()),
                            (self._header, state.job_id.encode("latin-1")),
                        ]
                await send(message)

            await self.app(scope, receive, send_with_job_id)
