"""Opening the jobtrail database file.

DuckDB allows one writing process per file, and within the process one connection should
own writes (the :class:`~jobtrail.storage.writer.BatchWriter`). Readers take their own
cursors from the same instance, so they see every committed batch without a second open.

A file that is not a jobtrail database is refused before anything is written to it: its
header is checked first, then its tables on a read-only connection (a read-write one would
merge a pending write-ahead log into the file when it closes).
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path

import duckdb

from jobtrail.storage.schema import SCHEMA_VERSION, SchemaError, current_version, migrate

#: Every DuckDB file has these bytes right after the header's 8-byte checksum.
_DUCKDB_MAGIC = b"DUCK"
_SQLITE_MAGIC = b"SQLite format 3\x00"

_Config = dict[str, str | bool | int | float | list[str]]


def _remember_absent_pandas() -> None:
    """Make ``import pandas`` fail at once when pandas is not installed.

    DuckDB's Python client tries to import pandas on every parameterised statement and
    every registered table to recognise pandas objects; a failed import is not cached, so
    each attempt searches ``sys.path`` again (~0.3 ms here, about a fifth of the writer's
    time under load). A ``None`` entry in ``sys.modules`` is Python's own "known absent"
    marker; it changes nothing for a program that has pandas installed.
    """
    if "pandas" not in sys.modules and importlib.util.find_spec("pandas") is None:
        sys.modules["pandas"] = None  # type: ignore[assignment]


_remember_absent_pandas()


class DatabaseError(RuntimeError):
    """The database file cannot be opened as a jobtrail database."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class Database:
    """A jobtrail DuckDB database: one connection, migrated, handing out read cursors."""

    def __init__(
        self,
        path: str | Path,
        *,
        threads: int | None = None,
        memory_limit_bytes: int | None = None,
        checkpoint_bytes: int | None = None,
    ) -> None:
        """Open (creating and migrating) the database at ``path``.

        Args:
            path: The DuckDB file, or ``:memory:``.
            threads: DuckDB worker threads (default: one per core).
            memory_limit_bytes: DuckDB's memory cap (default: DuckDB's, 80% of RAM). Its
                block cache grows with the file otherwise, which a process held to a memory
                limit (``processors.memory_limiter``) cannot afford.
            checkpoint_bytes: Write-ahead log size that triggers a checkpoint (default:
                DuckDB's, 16 MiB). Each checkpoint rewrites the changed tables' indexes
                whole, so rarer checkpoints cost less per stored record.
        """
        self.path = str(path)
        # Instance-wide hardening, fixed at connect time (it cannot be changed afterwards):
        # user SQL reaches this instance through the API, so it must not reach files,
        # extensions, Python objects or settings.
        config: _Config = {
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "python_enable_replacements": False,
            "lock_configuration": True,
            # A page (``ORDER BY ... LIMIT n``) reads the sort keys first and fetches whole
            # rows only for the n it returns; DuckDB does so up to 50 rows by default, one
            # short of a default jobs page (limit + 1). 100k jobs, no filter: 96 -> 39 ms.
            "late_materialization_max_rows": 1001,
        }
        if threads:
            config["threads"] = threads
        if memory_limit_bytes:
            config["memory_limit"] = f"{memory_limit_bytes}B"
        if checkpoint_bytes:
            config["checkpoint_threshold"] = f"{checkpoint_bytes}B"
        if self.path != ":memory:":
            _check_existing(Path(self.path), config)
        self.con = _connect(self.path, config)
        try:
            migrate(self.con)
        except (SchemaError, duckdb.Error) as exc:
            self.con.close()
            raise DatabaseError(_first_line(exc), path=self.path) from exc
        self._lock = threading.Lock()
        self._closed = False

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor for reads (one per thread; cursors are not thread-safe)."""
        with self._lock:
            if self._closed:
                raise DatabaseError("database is closed", path=self.path)
            return self.con.cursor()

    def close(self) -> None:
        """Checkpoint and close; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.con.execute("CHECKPOINT")
        finally:
            self.con.close()


def _connect(path: str, config: _Config, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(path, read_only=read_only, config=config)
    except duckdb.Error as exc:
        raise DatabaseError(_explain(exc), path=path) from exc


def _check_existing(path: Path, config: _Config) -> None:
    """Refuse, without writing to it, a path that is not a jobtrail database (or its dir)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a directory" if blocker else exc.strerror or str(exc)
        raise DatabaseError(f"cannot create its directory: {why}", path=str(path)) from exc
    if path.is_dir():
        raise DatabaseError("is a directory, not a database file", path=str(path))
    if not path.exists():
        return
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise DatabaseError(f"cannot read: {exc.strerror or exc}", path=str(path)) from exc
    if head.startswith(_SQLITE_MAGIC):
        raise DatabaseError(
            "is a SQLite database, not a DuckDB one; left untouched", path=str(path)
        )
    if head[8:12] != _DUCKDB_MAGIC:
        what = "is empty" if not head else "is not a DuckDB database file"
        raise DatabaseError(f"{what}; left untouched", path=str(path))
    con = _connect(str(path), config, read_only=True)
    try:
        version = current_version(con)
    except (SchemaError, duckdb.Error) as exc:
        raise DatabaseError(f"{_first_line(exc)}; left untouched", path=str(path)) from exc
    finally:
        con.close()
    if version > SCHEMA_VERSION:
        raise DatabaseError(
            f"database schema version {version} is newer than this jobtrail ({SCHEMA_VERSION}); "
            "left untouched",
            path=str(path),
        )


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _explain(exc: duckdb.Error) -> str:
    text = _first_line(exc)
    lowered = text.lower()
    if "could not set lock" in lowered or "conflicting lock" in lowered:
        return "database is locked by another process (is a jobtrail server already running?)"
    if "not a valid duckdb database file" in lowered:
        return "is not a DuckDB database file; left untouched"
    if "corrupt" in lowered or "checksum" in lowered or "could not read enough bytes" in lowered:
        return f"is damaged or truncated ({text}); left untouched"
    return text
