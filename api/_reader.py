"""Running storage queries off the event loop, one DuckDB cursor per worker thread.

DuckDB cursors are not thread-safe and a query blocks its thread, so reads go to a small
thread pool; each worker lazily takes its own cursor from the shared :class:`Database`
and keeps it. A query that outlives its time budget, or whose request went away, is
interrupted so it stops using a worker and CPU.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Concatenate, ParamSpec, TypeVar

import duckdb

from jobtrail.storage import Database
from jobtrail.storage.queries import QueryError

P = ParamSpec("P")
T = TypeVar("T")

_DEFAULT_MAX_WORKERS = 4
_DEFAULT_TIMEOUT_S = 30.0


class QueryTimeout(QueryError):
    """A read took longer than the API allows (HTTP 503; narrow the filters)."""

    def __init__(self, *, timeout_s: float) -> None:
        super().__init__(f"query took longer than {timeout_s:g}s; narrow the filters")
        self.timeout_s = timeout_s


def _quietly(action: Callable[[], object]) -> None:
    """Run a cursor cleanup that may fail because the database is already closed."""
    try:
        action()
    except duckdb.Error:
        pass


class _Call:
    """One query in flight: which cursor runs it, so it can be interrupted."""

    __slots__ = ("abandoned", "cursor", "done", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cursor: duckdb.DuckDBPyConnection | None = None
        self.done = False
        self.abandoned = False

    def interrupt(self) -> None:
        with self.lock:
            self.abandoned = True
            if self.cursor is not None and not self.done:
                _quietly(self.cursor.interrupt)


class Reader:
    """A thread pool of read cursors on one database.

    Args:
        db: The database to read (its writer lives elsewhere).
        max_workers: Queries running at once; more wait their turn.
        timeout_s: Longest a query may run before it is interrupted.

    Example:
        >>> reader = Reader(db); reader.start()  # doctest: +SKIP
        >>> await reader.run(queries.get_job, "job-1")  # doctest: +SKIP
    """

    def __init__(
        self,
        db: Database,
        *,
        max_workers: int = _DEFAULT_MAX_WORKERS,
        timeout_s: float = _DEFAULT_TIMEOUT_S,
    ) -> None:
        if max_workers <= 0 or timeout_s <= 0:
            raise ValueError("max_workers and timeout_s must be positive")
        self.db = db
        self._max_workers = max_workers
        self._timeout_s = timeout_s
        self._executor: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Create the thread pool (idempotent)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                self._max_workers, thread_name_prefix="jobtrail-api-read"
            )

    def close(self) -> None:
        """Interrupt running queries, stop the threads, close every cursor; idempotent."""
        executor, self._executor = self._executor, None
        with self._lock:
            running = list(self._cursors)
        for cur in running:  # interrupting an idle cursor is harmless
            _quietly(cur.interrupt)
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            cursors, self._cursors = self._cursors, []
        for cur in cursors:
            _quietly(cur.close)

    async def run(
        self,
        fn: Callable[Concatenate[duckdb.DuckDBPyConnection, P], T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``fn(cursor, *args, **kwargs)`` on a worker thread.

        Raises:
            QueryTimeout: The query ran longer than ``timeout_s`` and was interrupted.
            RuntimeError: The reader is not started.
        """
        if self._executor is None:
            raise RuntimeError("reader is not started (is the app running?)")
        call = _Call()

        def job(cur: duckdb.DuckDBPyConnection) -> T:
            return fn(cur, *args, **kwargs)

        future = asyncio.get_running_loop().run_in_executor(self._executor, self._call, call, job)
        try:
            return await asyncio.wait_for(future, self._timeout_s)
        except TimeoutError:
            call.interrupt()
            raise QueryTimeout(timeout_s=self._timeout_s) from None
        except asyncio.CancelledError:
            call.interrupt()
            raise

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self.db.cursor()
            self._local.cursor = cur
            with self._lock:
                self._cursors.append(cur)
        return cur

    def _call(self, call: _Call, job: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        cur = self._cursor()
        with call.lock:
            if call.abandoned:
                raise QueryTimeout(timeout_s=self._timeout_s)
            call.cursor = cur
        try:
            return job(cur)
        finally:
            with call.lock:
                call.done = True
