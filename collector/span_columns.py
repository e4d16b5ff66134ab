"""Spans to ``spans`` columns without a Python object per value.

Walking a request's spans, events and attributes through protobuf's Python wrappers costs
20 to 40 µs per span. The ``_spanwire`` extension (``collector/_spanwire.c``, built at
install) reads the request's wire bytes once and fills the Arrow buffers of every
``spans`` column, attribute, event and link JSON included; this module wraps them as a
table. Spans that may be jobs or steps also come back as Python values for the
conventions.

As with :mod:`jobtrail.collector.log_columns`, the extension answers ``None`` for what the
reference decoder (:func:`jobtrail.collector.decode.decode_traces_per_span`) words
differently — spans to reject, duplicate attribute keys, a singular message repeated on
the wire — and the caller decodes that request span by span. The two agree value for value
on the rest (``tests/collector/test_span_columns.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from jobtrail.collector._arrow_buffers import table_from_capsule
from jobtrail.storage.model import SPAN_SCHEMA

try:
    from jobtrail.collector import _spanwire  # type: ignore[attr-defined]
except ImportError:  # installed without a C compiler: the reference decoder does it all
    _spanwire = None

if _spanwire is not None and tuple(_spanwire.COLUMNS) != tuple(SPAN_SCHEMA.names):
    raise ImportError("collector/_spanwire.c's columns differ from storage.model.SPAN_SCHEMA")

#: Whether the native span decoder is installed.
AVAILABLE = _spanwire is not None

#: A span that may be a job or step: ``(trace_id, span_id, parent_span_id, name,
#: start_us, end_us, status_code, status_message, attributes, events, service)``.
Candidate = tuple[
    str, str, str | None, str, int | None, int | None, int, str, dict[str, Any],
    list[dict[str, Any]], str | None,
]  # fmt: skip


@dataclass(slots=True)
class SpanColumns:
    """A request's ``spans`` rows and its job/step candidates."""

    table: pa.Table
    #: In request order, each span with a ``job.type``, ``job.step``,
    #: ``cicd.pipeline.name`` or ``cicd.pipeline.task.name`` attribute.
    candidates: list[Candidate]


def span_columns(body: bytes, received_us: int) -> SpanColumns | None:
    """The ``spans`` rows of a serialized Export request, or None to decode it per span.

    ``body`` must already have parsed as an ``ExportTraceServiceRequest`` (the receivers
    parse every body to validate it): the extension relies on its framing and UTF-8.
    """
    if _spanwire is None:
        return None
    decoded = _spanwire.decode(body, received_us)
    if decoded is None:
        return None
    _rows, columns, candidates = decoded
    return SpanColumns(table_from_capsule(SPAN_SCHEMA, columns), candidates)
