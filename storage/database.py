"""Opening the jobtrail database file.

DuckDB allows one writing process per file, and within the process one connection should
own writes (the :class:`~jobtrail.storage.writer.BatchWriter`). Readers take their own
cursors from the same instance, so they see every committed batch without a second open.
"""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb

from jobtrail.storage.schema import SchemaError, migrate


class DatabaseError(RuntimeError):
    """The database file cannot be opened as a jobtrail database."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class Database:
    """A jobtrail DuckDB database: one connection, migrated, handing out read cursors."""

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        self.path = str(path)
        # Instance-wide hardening, fixed at connect time (it cannot be changed afterwards):
        # user SQL reaches this instance through the API, so it must not reach files,
        # extensions, Python objects or settings.
        config: dict[str, str | int | bool] = {
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "python_enable_replacements": False,
            "lock_configuration": True,
        }
        if threads:
            config["threads"] = threads
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(self.path, config=config)
        except duckdb.IOException as exc:
            raise DatabaseError(_explain(exc), path=self.path) from exc
        except duckdb.Error as exc:
            raise DatabaseError(str(exc).splitlines()[0], path=self.path) from exc
        try:
            migrate(self.con)
        except SchemaError as exc:
            self.con.close()
            raise DatabaseError(str(exc), path=self.path) from exc
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


def _explain(exc: duckdb.Error) -> str:
    text = str(exc)
    if "lock" in text.lower():
        return "database is locked by another process (is a jobtrail server already running?)"
    return text.splitlines()[0]
