"""Recording a job when it is put in a queue, before any worker runs it.

Producer and worker are usually different processes: the producer calls
``jobtrail.enqueue`` when it hands the job to its queue (Celery, RQ, a database table) and
passes the returned id along with the job; the worker runs ``jobtrail.job(..., id=that_id)``.
Until the worker's ``job.started`` arrives the collector shows the job as ``pending`` with
its ``queued_at`` time, so a job stuck in the queue is visible, and never taken for lost.
"""

from __future__ import annotations

import secrets
from typing import Any

from opentelemetry import trace

from jobtrail.semconv import (
    EVENT_JOB_QUEUED,
    JOB_ID,
    JOB_METADATA_PREFIX,
    JOB_NAME,
    JOB_OPERATION,
    JOB_OWNER,
    JOB_PARENT_ID,
    JOB_TOTAL_STEPS,
    JOB_TYPE,
)

from ._context import CURRENT_JOB
from ._encode import AttributeValue, encode_data
from ._runtime import Runtime
from ._stats import Counters

__all__ = ["EnqueueMixin", "enqueue_job"]


def enqueue_job(
    rt: Runtime,
    name: str,
    *,
    type: str,
    owner: str | None,
    operation: str | None,
    total_steps: int | None,
    id: str,
    metadata: dict[str, Any],
) -> None:
    """Send ``job.queued`` for the job ``id``.

    The record is not linked to the current span: that span is the producer's work, not
    the job's. A job enqueued from inside another job is that job's child.
    """
    attrs: dict[str, AttributeValue] = {JOB_ID: id, JOB_TYPE: str(type), JOB_NAME: str(name)}
    if owner is not None:
        attrs[JOB_OWNER] = str(owner)
    if operation is not None:
        attrs[JOB_OPERATION] = str(operation)
    if total_steps is not None:
        attrs[JOB_TOTAL_STEPS] = int(total_steps)
    parent = CURRENT_JOB.get()
    if parent is not None and parent.id:
        attrs[JOB_PARENT_ID] = parent.id
    encode_data(metadata, rt.max_data_len, attrs, JOB_METADATA_PREFIX)
    rt.emitter.emit(
        level="info",
        body="job queued",
        attributes=attrs,
        span=trace.INVALID_SPAN,
        event_name=EVENT_JOB_QUEUED,
    )


class EnqueueMixin:
    """``enqueue`` of :class:`~jobtrail.agent.Agent`, on its counters and ``_runtime``."""

    _counters: Counters

    def _runtime(self) -> Runtime:
        raise NotImplementedError

    def enqueue(
        self,
        name: str,
        /,
        *,
        type: str,
        owner: str | None = None,
        operation: str | None = None,
        total_steps: int | None = None,
        id: str | None = None,
        **metadata: Any,
    ) -> str:
        """Record a job put in a queue; it shows as ``pending`` until a worker starts it.

        Pass the returned id with the job; the worker runs it as ``job(name, type=...,
        id=job_id)``. Arguments as :meth:`job`; never raises (the id is returned anyway).

        Example:
            >>> import jobtrail
            >>> job_id = jobtrail.enqueue("nightly export", type="export", owner="ops")
            >>> with jobtrail.job("nightly export", type="export", id=job_id) as job:
            ...     job.info("picked up by a worker")
        """
        job_id = str(id) if id else secrets.token_hex(8)
        with self._counters.guard("enqueue"):
            enqueue_job(self._runtime(), name, type=type, owner=owner, operation=operation,
                        total_steps=total_steps, id=job_id, metadata=metadata)  # fmt: skip
        return job_id
