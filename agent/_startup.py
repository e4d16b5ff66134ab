"""What ``configure()`` starts once its pipeline is built: the runtime and the collector probe.

:class:`~jobtrail.agent.Agent` decides *whether* to configure (once, under its lock) and
owns the exit hook; this module holds what a successful configure brings up, and the
:class:`AgentState` that ``shutdown()`` later undoes as one unit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata

from jobtrail.semconv import SEVERITY_BY_LEVEL

from ._config import AgentConfig, probe_target
from ._emitter import SCOPE_NAME, Emitter
from ._heartbeat import Heartbeat
from ._logging_handler import instrument_logger
from ._pipeline import Pipeline
from ._probe import PROBE_TIMEOUT_S, start_probe
from ._propagation import inherited_parent
from ._runtime import Runtime
from ._stats import Counters

__all__ = ["AgentState", "probe_collector", "start_state"]


def _version() -> str:
    try:
        return importlib_metadata.version("jobtrail")
    except Exception:
        return ""


@dataclass
class AgentState:
    """Everything one ``configure()`` created, undone together by ``shutdown()``."""

    config: AgentConfig
    runtime: Runtime
    pipeline: Pipeline | None = None
    handlers: list[tuple[logging.Logger, logging.Handler]] = field(default_factory=list)


def start_state(config: AgentConfig, pipeline: Pipeline, counters: Counters) -> AgentState:
    """Build the runtime jobs capture, then switch on console output and log capture."""
    version = _version()
    heartbeat = None
    if config.heartbeat_interval_s > 0:
        heartbeat = Heartbeat(config.heartbeat_interval_s, counters)
    parent = inherited_parent()
    runtime = Runtime(
        tracer=pipeline.tracer_provider.get_tracer(SCOPE_NAME, version),
        emitter=Emitter(pipeline.logger_provider, version),
        counters=counters,
        max_data_len=config.max_data_len,
        heartbeat=heartbeat,
        parent_context=parent.context,
        parent_job_id=parent.job_id,
        min_severity=SEVERITY_BY_LEVEL[config.min_level],
    )
    state = AgentState(config=config, runtime=runtime, pipeline=pipeline)
    if config.console:
        pipeline.enable_console()
    if config.capture_logging:
        instrument_logger(state.handlers, runtime, logging.getLogger(), None)
    return state


def probe_collector(
    config: AgentConfig,
    pipeline: Pipeline,
    counters: Counters,
    *,
    console_fallback: bool,
    logger: logging.Logger,
) -> None:
    """Check the collector is reachable, waiting briefly; if not, spool and/or print.

    Args:
        config: The resolved options (``probe_endpoint``).
        pipeline: Whose spool goes straight to disk and console output is switched on.
        counters: Where reachability is recorded (``agent_stats().endpoint_reachable``).
        console_fallback: Also print records on stderr when unreachable.
        logger: Where the warning goes: the agent's, so its logger name stays put.
    """
    target = probe_target(config.probe_endpoint)
    if target is None:
        return

    def on_result(reachable: bool) -> None:
        counters.set_endpoint_reachable(reachable)
        if not reachable:
            with counters.guard("probe"):
                if pipeline.spool is not None:  # straight to disk, no doomed first try
                    pipeline.spool.mark_down()
                if console_fallback:
                    pipeline.enable_console()
                logger.warning(
                    "jobtrail: collector %s is not reachable%s",
                    config.probe_endpoint,
                    "; records also go to stderr" if console_fallback else "",
                )

    start_probe(*target, on_result).join(PROBE_TIMEOUT_S)
