"""The public surface changes only on purpose."""

from __future__ import annotations

import jobtrail
import jobtrail.agent

AGENT_NAMES = [
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


def test_agent_all_is_exact_and_sorted() -> None:
    assert jobtrail.agent.__all__ == AGENT_NAMES
    assert jobtrail.agent.__all__ == sorted(jobtrail.agent.__all__)
    for name in AGENT_NAMES:
        assert hasattr(jobtrail.agent, name)


def test_root_package_reexports_the_agent_lazily() -> None:
    assert jobtrail.__all__ == [n for n in AGENT_NAMES if n != "DEFAULT_AGENT"]
    for name in jobtrail.__all__:
        assert getattr(jobtrail, name) is getattr(jobtrail.agent, name)


def test_module_functions_are_bound_to_the_default_agent() -> None:
    default = jobtrail.agent.DEFAULT_AGENT
    assert jobtrail.job == default.job
    assert jobtrail.configure == default.configure
    assert jobtrail.agent_stats == default.stats
    assert isinstance(jobtrail.agent_stats(), jobtrail.AgentStats)
