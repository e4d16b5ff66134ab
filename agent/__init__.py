"""jobtrail agent: record background jobs as OpenTelemetry spans and log records.

A job is a span, each step a child span, and everything the job logs an OTel log record
linked to them; lifecycle records (``job.started``, ``job.progress``, ``step.started``,
``job.heartbeat``) make running jobs visible before their spans end, and ``job.queued``
(:func:`enqueue`) shows a job waiting in a queue before it runs.

Example:
    >>> import jobtrail
    >>> with jobtrail.job("import users", type="import", total_steps=2) as job:
    ...     with job.step("download"):
    ...         job.info("fetched", rows=120)
    ...     with job.step("store"):
    ...         pass
    ...     job.result = {"rows": 120}

The functions below are bound to :data:`DEFAULT_AGENT`; create an :class:`Agent` for an
independent pipeline.
"""

from __future__ import annotations

from ._agent import Agent
from ._context import current_job, current_step
from ._executor import context_executor
from ._job import Job
from ._stats import AgentStats
from ._step import Step

__all__ = [
    "Agent",
    "AgentStats",
    "DEFAULT_AGENT",
    "Job",
    "Step",
    "agent_stats",
    "attach_job",
    "configure",
    "context_executor",
    "current_job",
    "current_step",
    "enqueue",
    "execute_job",
    "force_flush",
    "instrument_logging",
    "job",
    "job_fn",
    "shutdown",
    "start_job",
]

#: The agent behind the module-level functions; it installs its providers as the OTel
#: globals when the application has not set any.
DEFAULT_AGENT = Agent(set_global=True)

configure = DEFAULT_AGENT.configure
job = DEFAULT_AGENT.job
enqueue = DEFAULT_AGENT.enqueue
job_fn = DEFAULT_AGENT.job_fn
force_flush = DEFAULT_AGENT.force_flush
shutdown = DEFAULT_AGENT.shutdown
agent_stats = DEFAULT_AGENT.stats
instrument_logging = DEFAULT_AGENT.instrument_logging
execute_job = DEFAULT_AGENT.execute_job
start_job = DEFAULT_AGENT.start_job
attach_job = DEFAULT_AGENT.attach_job
