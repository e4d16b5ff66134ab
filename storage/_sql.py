"""Small helpers the read queries share: SQL building with bound parameters, row shaping.

Every value from a request is bound as a named parameter (``$name``); only constant SQL
fragments written in this package are ever joined into a statement. Timestamps are
formatted by DuckDB (``strftime``) so Python does no per-row date work.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson

from jobtrail.semconv import LEVELS
from jobtrail.storage._query_model import InvalidParameter

#: RFC 3339 UTC with microseconds, as DuckDB's ``strftime`` spells it.
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

#: Attribute keys that already have their own log column (or are jobtrail plumbing).
_DATA_DROP_KEYS = frozenset({"event.name", "log.category", "log.iostream"})
_DATA_DROP_PREFIXES = ("job.", "exception.")


def ts(column: str, alias: str | None = None) -> str:
    """SQL that renders a naive-UTC ``TIMESTAMP`` column as an RFC 3339 string."""
    name = alias or column.rsplit(".", 1)[-1]
    return f"strftime({column}, '{_TS_FORMAT}') AS {name}"


def format_ts(value: datetime) -> str:
    """The Python twin of :func:`ts`, for the few timestamps built outside SQL."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime(_TS_FORMAT)


def utcnow() -> datetime:
    """Now as a naive UTC datetime, the form the tables store."""
    return datetime.now(UTC).replace(tzinfo=None)


def sql_strings(values: Iterable[str]) -> str | None:
    """``values`` as a comma-separated list of SQL string literals, or None if one cannot be.

    Quotes are doubled (DuckDB strings have no other escapes); a NUL character cannot be
    written in a statement's text, so such a list is refused and the caller uses parameters.
    """
    out = []
    for value in values:
        if "\x00" in value:
            return None
        out.append("'" + value.replace("'", "''") + "'")
    return ", ".join(out) if out else None


class Where:
    """Accumulates ``WHERE`` clauses and the named parameters they use."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.params: dict[str, Any] = {}

    def add(self, clause: str, **params: Any) -> None:
        """Add a constant clause and bind its parameters."""
        self.clauses.append(clause)
        self.params.update(params)

    def copy(self) -> Where:
        """An independent copy to add clauses to."""
        other = Where()
        other.clauses = list(self.clauses)
        other.params = dict(self.params)
        return other

    def sql(self) -> str:
        """``WHERE a AND b`` (or nothing)."""
        return f"WHERE {' AND '.join(self.clauses)}" if self.clauses else ""


def text_match(where: Where, columns: tuple[str, ...], text: str) -> None:
    """Add "any of ``columns`` contains ``text``, ignoring case" to ``where``.

    ``contains(lower(col), needle)`` rather than ``ILIKE '%needle%'``: with DuckDB 1.5 it
    scans 3-4x faster (5M log records: 0.7 s against 2.5 s; 100k job names: 10 ms against
    17 ms) and takes the text literally, pattern characters included.
    """
    terms = [f"contains(lower({c}), $q)" for c in columns]
    where.add(f"({' OR '.join(terms)})", q=text.lower())


def fetch_dicts(
    cur: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run a query and return its rows as dicts keyed by column name."""
    result = cur.execute(sql, params or {})
    names = [d[0] for d in result.description or ()]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


@contextmanager
def snapshot(cur: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run several reads in one transaction so they see the same committed state."""
    cur.execute("BEGIN TRANSACTION")
    try:
        yield
    finally:
        cur.execute("ROLLBACK")


@contextmanager
def transaction(cur: duckdb.DuckDBPyConnection, *, commit: bool = True) -> Iterator[None]:
    """One write transaction: committed at the end (rolled back when ``commit`` is false,
    as for a dry run), rolled back on any exception, which then propagates."""
    cur.execute("BEGIN TRANSACTION")
    try:
        yield
        cur.execute("COMMIT" if commit else "ROLLBACK")  # a failed COMMIT is rolled back too
    except BaseException:
        with suppress(duckdb.Error):  # the connection may be gone: the first error matters
            cur.execute("ROLLBACK")
        raise


def parse_json(text: str | None, default: Any = None) -> Any:
    """Parse a JSON column value (``None`` stays ``default``)."""
    if text is None:
        return default
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # e.g. NaN written by a lenient client
        return json.loads(text)


def by_level(counts: dict[str, int]) -> dict[str, int]:
    """Counts keyed by level, in severity order (debug first), unknown levels last."""
    rank = {level: i for i, level in enumerate(LEVELS)}
    return dict(sorted(counts.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def log_data(attributes: str | None) -> dict[str, Any]:
    """A log record's user data: its attributes without keys that have their own column."""
    attrs = parse_json(attributes, {})
    if not isinstance(attrs, dict):
        return {}
    return {
        k: v
        for k, v in attrs.items()
        if k not in _DATA_DROP_KEYS and not k.startswith(_DATA_DROP_PREFIXES)
    }


def encode_cursor(started_at: str | None, job_id: str) -> str:
    """An opaque paging cursor: where the previous page ended, in sort order."""
    raw = orjson.dumps([started_at, job_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime | None, str]:
    """Undo :func:`encode_cursor`; anything else is an invalid ``cursor`` parameter."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        started_at, job_id = orjson.loads(raw)
        if not isinstance(job_id, str) or not (started_at is None or isinstance(started_at, str)):
            raise ValueError("bad cursor fields")
        when = None if started_at is None else datetime.fromisoformat(started_at)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise InvalidParameter("not a cursor returned by this API", name="cursor") from exc
    if when is not None and when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when, job_id
