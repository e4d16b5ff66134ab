"""jobtrail: an OpenTelemetry-native background-job tracker.

The application-facing API is the agent's (:mod:`jobtrail.agent`), re-exported here and
imported lazily on first attribute access, so server-side code that only needs
``jobtrail.semconv`` does not pay for the OTel SDK.

Example:
    >>> import jobtrail
    >>> with jobtrail.job("import users", type="import") as job:
    ...     job.info("started import")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobtrail.agent import (
        Agent,
        AgentStats,
        Job,
        Step,
        agent_stats,
        attach_job,
        configure,
        context_executor,
        current_job,
        current_step,
        enqueue,
        execute_job,
        force_flush,
        instrument_logging,
        job,
        job_fn,
        shutdown,
        start_job,
    )

__all__ = [
    "Agent",
    "AgentStats",
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

_AGENT_NAMES = frozenset(__all__)


def __getattr__(name: str) -> Any:
    """Resolve agent names on first use (PEP 562), then cache them in this module."""
    if name in _AGENT_NAMES:
        value = getattr(importlib.import_module("jobtrail.agent"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jobtrail' has no attribute {name!r}")


def __dir__() -> list[str]:
    """List the lazily exported names too."""
    return sorted(set(globals()) | _AGENT_NAMES)
