"""aiohttp server middleware: requests join jobs, handlers' jobs are named in the response.

A request with ``X-Job-ID`` (or a W3C ``traceparent`` of a job) runs attached to that job:
its logs and the jobs it starts belong there. The id of the first job a handler starts
(``jobtrail.job``, ``jobtrail.start_job`` for work that goes on in the background), else
the attached one, comes back in the ``X-Job-ID`` response header.

Example:
    >>> from aiohttp import web
    >>> import jobtrail
    >>> from jobtrail.agent.integrations.aiohttp_server import jobtrail_middleware
    >>> async def run_export(job_id, update_progress):
    ...     await update_progress(100, "written")
    >>> async def export(request):
    ...     job = jobtrail.start_job(run_export, name="export", type="export")
    ...     return web.json_response({"job_id": job.id}, status=202)
    >>> app = web.Application(middlewares=[jobtrail_middleware()])
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from .._agent import Agent
from ._http import JOB_ID_HEADER, RequestTracker

__all__ = ["jobtrail_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def jobtrail_middleware(
    *,
    agent: Agent | None = None,
    request_job_type: str | None = None,
    header: str = JOB_ID_HEADER,
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Build the middleware.

    Args:
        agent: The agent to record through (default: the module-level one).
        request_job_type: Also run each request that names no job as a job of this type
            (``GET /path``; a 5xx response or an exception fails it).
        header: The request/response header carrying a job id.

    Example:
        >>> app = web.Application(middlewares=[jobtrail_middleware(request_job_type="http")])
    """
    tracker = RequestTracker(agent, request_job_type=request_job_type, header=header)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        raised: web.HTTPException | None = None
        with tracker.track(request.method, request.path, request.headers.get) as state:
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # a response raised (404, redirects...)
                raised = response = exc
            state.set_status(response.status)
        if state.job_id and not response.prepared:
            response.headers[header] = state.job_id
        if raised is not None:
            raise raised
        return response

    return middleware
