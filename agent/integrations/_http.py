"""What every HTTP middleware does, whatever the framework.

Per request: attach to the job the request names (``X-Job-ID`` and/or a W3C
``traceparent``) so the handler's logs and new jobs belong to it; optionally run the
request itself as a job (seed 003's HTTP middleware); and learn the id of the first job
the handler starts — even one that continues in a background task — to return it in the
``X-Job-ID`` response header.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from opentelemetry import trace

from .._agent import Agent
from .._context import ON_JOB_STARTED
from .._job import Job

__all__ = ["JOB_ID_HEADER", "RequestState", "RequestTracker"]

JOB_ID_HEADER = "X-Job-ID"
_TRACEPARENT_HEADER = "traceparent"
_SERVER_ERROR = 500


@dataclass
class RequestState:
    """The jobs of one request."""

    attached_id: str | None = None
    request_job: Job | None = None
    started: list[str] = field(default_factory=list)

    @property
    def job_id(self) -> str | None:
        """The id for the response header: the first job started, else the attached one."""
        return self.started[0] if self.started else self.attached_id

    def set_status(self, status: int) -> None:
        """Record the response status: a server error fails the request's own job."""
        if self.request_job is not None and status >= _SERVER_ERROR:
            self.request_job.fail(f"HTTP {status}")


class RequestTracker:
    """Framework-independent request handling shared by the middlewares.

    Args:
        agent: The agent to record through (default: the module-level one).
        request_job_type: Run every request that names no job as a job of this type.
        header: The request/response header carrying a job id.
    """

    def __init__(
        self,
        agent: Agent | None = None,
        *,
        request_job_type: str | None = None,
        header: str = JOB_ID_HEADER,
    ) -> None:
        """Configure the tracker."""
        if agent is None:
            from jobtrail.agent import DEFAULT_AGENT

            agent = DEFAULT_AGENT
        self.agent = agent
        self.request_job_type = request_job_type
        self.header = header

    @contextmanager
    def track(
        self, method: str, path: str, get_header: Callable[[str], str | None]
    ) -> Iterator[RequestState]:
        """Run the body of a request inside its job context; yield its :class:`RequestState`."""
        job_id = (get_header(self.header) or "").strip() or None
        traceparent = get_header(_TRACEPARENT_HEADER)
        if trace.get_current_span().get_span_context().is_valid:
            traceparent = None  # OTel instrumentation already continues the caller's trace
        state = RequestState(attached_id=job_id)

        def on_job_started(job: Job) -> None:
            if not state.started:  # the first job of the request is the one to name
                state.started.append(job.id)

        token = ON_JOB_STARTED.set(on_job_started)
        try:
            with ExitStack() as stack:
                if job_id or traceparent:
                    stack.enter_context(self.agent.attach_job(job_id, traceparent=traceparent))
                elif self.request_job_type is not None:
                    state.request_job = stack.enter_context(
                        self.agent.job(
                            f"{method} {path}",
                            type=self.request_job_type,
                            http_method=method,
                            http_path=path,
                        )
                    )
                yield state
        finally:
            ON_JOB_STARTED.reset(token)
