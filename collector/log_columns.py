"""Log records to ``logs`` columns without a Python object per value.

Walking a request's records and attributes through protobuf's Python wrappers costs about
12 µs per log record, half of the server's CPU under load. The ``_logwire`` extension
(``collector/_logwire.c``, built at install) reads the request's wire bytes once and
fills the Arrow buffers of every ``logs`` column itself, attribute JSON included; this
module wraps those buffers as an Arrow table.

The extension takes what clients send in practice and answers ``None`` for the rest
(records to reject, duplicate attribute keys, a non-string value in an attribute copied
to a column, ...), which the caller then decodes record by record with the reference
decoder in :mod:`jobtrail.collector.decode`; the two agree value for value on everything
the extension takes (``tests/collector/test_log_columns.py``). Without a C compiler at
install time the extension is absent and every request takes the reference decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from jobtrail.collector._arrow_buffers import table_from_capsule
from jobtrail.storage.model import LOG_SCHEMA

try:
    from jobtrail.collector import _logwire  # type: ignore[attr-defined]
except ImportError:  # installed without a C compiler: the reference decoder does it all
    _logwire = None

if _logwire is not None and tuple(_logwire.COLUMNS) != tuple(LOG_SCHEMA.names):
    raise ImportError("collector/_logwire.c's columns differ from storage.model.LOG_SCHEMA")

#: Whether the native column decoder is installed.
AVAILABLE = _logwire is not None


@dataclass(slots=True)
class LogColumns:
    """A request's ``logs`` rows and where its lifecycle records are."""

    table: pa.Table
    #: Per lifecycle record, in request order: ``(event, trace_id, span_id, time_us,
    #: attributes, service)``, what :func:`jobtrail.collector.conventions.lifecycle_updates`
    #: reads (ids as hex or None, ``time_us`` from the record's time or observed time).
    lifecycle: list[tuple[str, str | None, str | None, int | None, dict[str, Any], str | None]]


def log_columns(body: bytes, received_us: int) -> LogColumns | None:
    """The ``logs`` rows of a serialized Export request, or None to decode it per record.

    ``body`` must already have parsed as an ``ExportLogsServiceRequest`` (the receivers
    parse every body to validate it): the extension relies on its framing and UTF-8.
    """
    if _logwire is None:
        return None
    decoded = _logwire.decode(body, received_us)
    if decoded is None:
        return None
    _rows, columns, lifecycle = decoded
    return LogColumns(table_from_capsule(LOG_SCHEMA, columns), lifecycle)
