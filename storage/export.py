"""Export the job history to Parquet, CSV or JSON lines files for DuckDB, pandas or Spark.

Each table is read in pages ordered by a key (log ids; job ids; trace and span ids), so a
month of history never sits in memory whole, and the same code reads either a database
file directly or a running server through its read-only SQL route. Every table is cut to
the window by its own time column and, in Parquet, partitioned by that column's day
(``DIR/logs/day=2026-11-23/part-0.parquet``); CSV and JSON lines get one file per table.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

#: Reads one page: ``(sql, params) -> rows`` as an Arrow table.
Fetch = Callable[[str, list[Any]], pa.Table]

FORMATS = ("parquet", "csv", "jsonl")


@dataclass(frozen=True)
class ExportTable:
    """How one table is paged and cut to the window."""

    name: str
    time_column: str
    keys: tuple[tuple[str, str], ...]  # (column, SQL type) of the paging key, in order


TABLES = (
    ExportTable("jobs", "started_at", (("id", "VARCHAR"),)),
    ExportTable("steps", "started_at", (("trace_id", "VARCHAR"), ("span_id", "VARCHAR"))),
    ExportTable("logs", "time", (("id", "BIGINT"),)),
    ExportTable(
        "spans",
        "start_time",
        (("trace_id", "VARCHAR"), ("span_id", "VARCHAR"), ("received_at", "TIMESTAMP")),
    ),
)


def _pages(
    fetch: Fetch, table: ExportTable, since: datetime | None, until: datetime | None, size: int
) -> Iterator[pa.Table]:
    """The table's rows in the window, ``size`` at a time, in key order (keyset paging)."""
    window, params = [], []
    if since is not None:
        window.append(f"{table.time_column} >= ?::TIMESTAMP")
        params.append(since.isoformat(sep=" "))
    if until is not None:
        window.append(f"{table.time_column} < ?::TIMESTAMP")
        params.append(until.isoformat(sep=" "))
    keys = ", ".join(name for name, _ in table.keys)
    marks = ", ".join(f"?::{kind}" for _, kind in table.keys)
    after: list[Any] | None = None
    while True:
        clauses = list(window)
        page_params = list(params)
        if after is not None:
            clauses.append(f"({keys}) > ({marks})" if len(table.keys) > 1 else f"{keys} > {marks}")
            page_params += after
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM {table.name} {where} ORDER BY {keys} LIMIT {size}"  # noqa: S608
        page = fetch(sql, page_params)
        if page.num_rows:
            yield page
        if page.num_rows < size:
            return
        last = page.slice(page.num_rows - 1)
        after = [_param(last.column(name)[0].as_py()) for name, _ in table.keys]


def _param(value: Any) -> Any:
    return value.isoformat(sep=" ") if isinstance(value, datetime) else value


class _Writer:
    """Writes one table's pages in one format under ``to``."""

    def __init__(self, to: Path, table: ExportTable, fmt: str) -> None:
        self.table, self.fmt, self.rows = table, fmt, 0
        self._part = 0
        self._dir = to / table.name
        self._file = to / f"{table.name}.{fmt}"
        self._out: Any = None
        self._csv: Any = None

    def write(self, page: pa.Table) -> None:
        self.rows += page.num_rows
        if self.fmt == "parquet":
            day = pc.cast(page.column(self.table.time_column), pa.date32())
            ds.write_dataset(
                page.append_column("day", day),
                self._dir,
                format="parquet",
                partitioning=ds.partitioning(pa.schema([("day", pa.date32())]), flavor="hive"),
                basename_template=f"part-{self._part}-{{i}}.parquet",
                existing_data_behavior="overwrite_or_ignore",
            )
            self._part += 1
            return
        if self._out is None:
            self._out = self._file.open("w", newline="", encoding="utf-8")
        rows = page.to_pylist()
        if self.fmt == "jsonl":
            opts = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
            self._out.write("".join(orjson.dumps(r, option=opts).decode() + "\n" for r in rows))
            return
        if self._csv is None:
            self._csv = csv.DictWriter(self._out, fieldnames=page.column_names)
            self._csv.writeheader()
        self._csv.writerows(rows)

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
        elif self.fmt != "parquet":
            self._file.write_text("")  # no rows in the window: an empty file, not none


def export(
    fetch: Fetch,
    to: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    fmt: str = "parquet",
    page_rows: int = 50_000,
    on_page: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Write jobs, steps, logs and spans in the window under ``to``; rows written per table.

    Args:
        fetch: Runs one SELECT with ``?`` parameters and returns its rows.
        to: The output directory (created; existing files of the same names are replaced).
        since: Inclusive lower bound (naive UTC) on each table's time column.
        until: Exclusive upper bound.
        fmt: ``parquet``, ``csv`` or ``jsonl``.
        page_rows: Rows read per request.
        on_page: Called with (table, rows so far) after each page, for progress.

    Raises:
        ValueError: Unknown format, or ``until`` not after ``since``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    if since is not None and until is not None and until <= since:
        raise ValueError("--until must be later than --since")
    to.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for table in TABLES:
        writer = _Writer(to, table, fmt)
        try:
            for page in _pages(fetch, table, since, until, page_rows):
                writer.write(page)
                if on_page is not None:
                    on_page(table.name, writer.rows)
        finally:
            writer.close()
        counts[table.name] = writer.rows
    return counts
