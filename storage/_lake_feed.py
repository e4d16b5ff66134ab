"""Rows added to lake tables since the last look, from any collector, read cheaply.

Live events and cross-collector linking both ask "what did anyone commit since I last
looked?". Scanning a table for ``rowid > mark`` touches every file of it; DuckLake's change
feed (``ducklake_table_insertions`` between two snapshots) touches only the files those
snapshots added. The feed also re-lists rows that compaction rewrote, so the row id mark
filters them out: row ids are assigned in commit order and kept by compaction, so a row
newer than the mark is exactly a row not seen before.

Use it inside a transaction, whose DuckLake snapshot is fixed: :meth:`Feed.sources` names
the new rows of each table as SQL, and :meth:`Feed.advance` moves the marks once the caller
has handled them (a failure in between leaves them, so nothing is skipped).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb


def current_snapshot(cur: duckdb.DuckDBPyConnection, lake: str) -> int:
    """The snapshot id a transaction reads (outside one: the newest)."""
    row = cur.execute(f"SELECT id FROM ducklake_current_snapshot('{lake}')").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def max_rowid(cur: duckdb.DuckDBPyConnection, table: str) -> int:
    """The largest row id in a table (a scan: used once, at start)."""
    row = cur.execute(f"SELECT coalesce(max(rowid), -1) FROM {table}").fetchone()  # noqa: S608
    return int(row[0]) if row else -1


@dataclass(slots=True)
class Feed:
    """Marks (last snapshot, largest row id per table) of what one reader has seen."""

    lake: str
    tables: tuple[str, ...]
    snapshot: int = -1
    marks: dict[str, int] = field(default_factory=dict)
    _pending: tuple[int, dict[str, int]] | None = None

    def start(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Everything committed so far counts as seen."""
        self.snapshot = current_snapshot(cur, self.lake)
        self.marks = {t: max_rowid(cur, f"{self.lake}.{t}") for t in self.tables}

    @property
    def started(self) -> bool:
        """Whether :meth:`start` ran (marks exist)."""
        return self.snapshot >= 0

    def sources(self, cur: duckdb.DuckDBPyConnection) -> dict[str, str] | None:
        """Per table, a parenthesised SELECT of the rows new since the marks (with ``rowid``);
        None when nothing was committed since. Call :meth:`advance` after using them."""
        snapshot = current_snapshot(cur, self.lake)
        if snapshot <= self.snapshot:
            return None
        sources = {
            t: (
                f"(SELECT rowid, * FROM ducklake_table_insertions('{self.lake}', 'main', '{t}', "
                f"{self.snapshot + 1}, {snapshot}) WHERE rowid > {self.marks[t]})"
            )
            for t in self.tables
        }
        try:
            marks = self._new_marks(cur, sources)
        except duckdb.Error:
            # The last snapshot seen was expired (this reader stalled for longer than the
            # snapshots are kept): fall back to scanning by row id, once.
            sources = {
                t: f"(SELECT rowid, * FROM {self.lake}.{t} WHERE rowid > {self.marks[t]})"
                for t in self.tables
            }
            marks = self._new_marks(cur, sources)
        self._pending = (snapshot, marks)
        return sources

    def _new_marks(self, cur: duckdb.DuckDBPyConnection, sources: dict[str, str]) -> dict[str, int]:
        marks = {}
        for t, source in sources.items():
            row = cur.execute(f"SELECT max(rowid) FROM {source}").fetchone()  # noqa: S608
            marks[t] = self.marks[t] if not row or row[0] is None else int(row[0])
        return marks

    def advance(self) -> None:
        """The rows named by the last :meth:`sources` were handled: move the marks past them."""
        if self._pending is not None:
            self.snapshot, self.marks = self._pending
            self._pending = None
