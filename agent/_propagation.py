"""The parent a process inherits from its environment: ``TRACEPARENT`` and the parent job id.

A program started by ``jobtrail run`` (or any tool following the W3C/otel-cli convention of
exporting ``TRACEPARENT``) joins its parent's trace: the agent starts its top-level jobs
under that span context, and ``JOBTRAIL_PARENT_JOB_ID`` names the parent job explicitly
(``job.parent_id``) so the collector links the child job before the parent's span arrives.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = [
    "ENV_PARENT_JOB_ID",
    "ENV_TRACEPARENT",
    "ENV_TRACESTATE",
    "InheritedParent",
    "child_environment",
    "inherited_parent",
]

ENV_TRACEPARENT = "TRACEPARENT"
ENV_TRACESTATE = "TRACESTATE"
ENV_PARENT_JOB_ID = "JOBTRAIL_PARENT_JOB_ID"

_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass(frozen=True, slots=True)
class InheritedParent:
    """Where top-level jobs of this process hang: a span context and/or a parent job id."""

    context: Context | None = None
    job_id: str | None = None


def inherited_parent(environ: Mapping[str, str] | None = None) -> InheritedParent:
    """Read ``TRACEPARENT``/``TRACESTATE``/``JOBTRAIL_PARENT_JOB_ID``; ignore invalid values.

    Example:
        >>> env = {"TRACEPARENT": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
        >>> inherited_parent(env).context is not None
        True
        >>> inherited_parent({}).context is None
        True
    """
    env = os.environ if environ is None else environ
    context: Context | None = None
    traceparent = env.get(ENV_TRACEPARENT, "").strip()
    if traceparent:
        carrier = {"traceparent": traceparent}
        tracestate = env.get(ENV_TRACESTATE, "").strip()
        if tracestate:
            carrier["tracestate"] = tracestate
        extracted = _PROPAGATOR.extract(carrier)
        if trace.get_current_span(extracted).get_span_context().is_valid:
            context = extracted
    job_id = env.get(ENV_PARENT_JOB_ID, "").strip() or None
    return InheritedParent(context=context, job_id=job_id)


def child_environment(span: trace.Span, job_id: str) -> dict[str, str]:
    """The variables that make a child process's jobs children of ``span``'s job.

    Example:
        >>> child_environment(trace.INVALID_SPAN, "abc")
        {'JOBTRAIL_PARENT_JOB_ID': 'abc'}
    """
    carrier: dict[str, str] = {}
    if span.get_span_context().is_valid:
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    env = {ENV_PARENT_JOB_ID: job_id} if job_id else {}
    if "traceparent" in carrier:
        env[ENV_TRACEPARENT] = carrier["traceparent"]
    if carrier.get("tracestate"):
        env[ENV_TRACESTATE] = carrier["tracestate"]
    return env
