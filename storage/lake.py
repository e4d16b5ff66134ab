"""DuckLake storage: several ``jobtrail serve`` processes writing and reading one lake.

The embedded DuckDB file stays the default. When one machine is not enough, collectors
share a DuckLake instead: tables are Parquet files under ``data_path`` (a local or network
directory, or object storage) and the catalog lives in PostgreSQL, which gives many DuckDB
processes transactions on the same tables.

:class:`LakeDatabase` is a :class:`~jobtrail.storage.Database` whose read surface has the
embedded tables' names (``jobs``, ``steps``, ``logs``, ...; see
:mod:`jobtrail.storage._lake_views`), so the queries, live streams and SQL route run on it
unchanged. :class:`~jobtrail.storage._lake_writer.LakeWriter` is the matching writer.

Example:
    >>> from jobtrail.storage.lake import LakeConfig, LakeDatabase
    >>> lake = LakeConfig(catalog="postgres:dbname=jobtrail host=db.internal",
    ...                   data_path="/shared/lake")
    >>> db = LakeDatabase(lake)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from jobtrail.storage._lake_ext import (
    S3_SCHEMES,
    LakeExtensionError,
    S3Settings,
    load_extension,
    s3_secret_sql,
)
from jobtrail.storage._lake_maintenance import LakeRetention
from jobtrail.storage._lake_schema import LakeSchemaError, migrate_lake
from jobtrail.storage._lake_views import create_read_views
from jobtrail.storage.database import Database, DatabaseError

if TYPE_CHECKING:
    from jobtrail.storage._lake_tasks import LakeTasks
    from jobtrail.storage._lake_writer import LakeWriter

log = logging.getLogger(__name__)

__all__ = [
    "LakeConfig", "LakeDatabase", "LakeRetention", "LakeStorage", "S3Settings", "open_lake",
]  # fmt: skip

#: Object-storage schemes DuckDB reads through ``httpfs``.
_REMOTE = re.compile(r"^(s3|s3a|gs|gcs|r2|https?)://", re.I)
_PASSWORD = re.compile(r"(password\s*=\s*)(\S+)", re.I)
_ATTACH_ATTEMPTS = 20
_DEFAULT_COMMIT_INTERVAL_S = 0.5


@dataclass(frozen=True, slots=True)
class LakeConfig:
    """Where a lake lives and how collectors write it.

    Args:
        catalog: The PostgreSQL catalog as ``postgres:<libpq connection string>``, for
            example ``postgres:dbname=jobtrail host=db.internal user=jobtrail``.
        data_path: Directory of the Parquet files, shared by every collector: a local or
            network path, or ``s3://bucket/prefix``.
        commit_interval_s: How long the writer gathers records before a commit. Longer means
            fewer, larger Parquet files (and fewer catalog transactions); the OTLP Export is
            answered after the commit, so it is also the added ingest latency.
        data_inlining_row_limit: Inserts of fewer rows go into the catalog instead of a new
            Parquet file (DuckLake's data inlining; ``None`` keeps DuckLake's default).
        name: The name the lake is attached under (what user SQL may qualify tables with).
        s3: Endpoint, region and credentials for a ``data_path`` on ``s3://``; ``None``
            takes them all from the standard ``AWS_*`` variables (see :class:`S3Settings`).
    """

    catalog: str
    data_path: str
    commit_interval_s: float = _DEFAULT_COMMIT_INTERVAL_S
    data_inlining_row_limit: int | None = None
    name: str = "lake"
    s3: S3Settings | None = None

    def __post_init__(self) -> None:
        if not self.catalog.startswith("postgres:") or not self.catalog[len("postgres:") :]:
            raise ValueError(
                "lake catalog: expected postgres:<connection string>, for example "
                "'postgres:dbname=jobtrail host=db.internal'"
            )
        if not self.data_path.strip():
            raise ValueError("lake data_path: expected a directory or s3://bucket/prefix")
        if self.commit_interval_s < 0:
            raise ValueError("lake commit_interval: must be >= 0")
        if self.data_inlining_row_limit is not None and self.data_inlining_row_limit < 0:
            raise ValueError("lake data_inlining_row_limit: must be >= 0")
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", self.name):
            raise ValueError("lake name: expected a lower-case SQL identifier")
        if self.s3 is not None and not self.on_s3:
            raise ValueError("lake s3: only for a data_path on s3://bucket/prefix")

    @property
    def remote(self) -> bool:
        """Whether the data lives in object storage rather than a filesystem."""
        return bool(_REMOTE.match(self.data_path))

    @property
    def on_s3(self) -> bool:
        """Whether the data lives in S3 or an S3-compatible store (MinIO, R2, ...)."""
        return self.data_path.lower().startswith(S3_SCHEMES)

    @property
    def data_dir(self) -> str:
        """``data_path`` as DuckLake wants it: absolute, ending in a separator."""
        path = self.data_path if self.remote else str(Path(self.data_path).resolve())
        return path if path.endswith("/") else f"{path}/"

    @property
    def display(self) -> str:
        """The catalog for messages and metrics, with any password masked."""
        return "ducklake:" + _PASSWORD.sub(r"\1***", self.catalog)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class LakeDatabase(Database):
    """A DuckLake attached to a private in-memory DuckDB, hardened like the embedded file.

    The extensions are loaded and the lake attached first; then external access is turned
    off except for the lake's data directory (which DuckLake must read and write), and the
    configuration is locked. So user SQL reaches the same things as on the embedded file —
    jobtrail's tables — plus nothing but the lake's own Parquet files, which the SQL check
    rejects reading directly anyway (see docs/scaling.md, "Security").
    """

    def __init__(
        self,
        lake: LakeConfig,
        *,
        threads: int | None = None,
        memory_limit_bytes: int | None = None,
    ) -> None:
        self.lake = lake
        self.path = lake.display
        config: dict[str, str | bool | int | float | list[str]] = {
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "python_enable_replacements": False,
        }
        if threads:
            config["threads"] = threads
        if memory_limit_bytes:
            config["memory_limit"] = f"{memory_limit_bytes}B"
        con = duckdb.connect(":memory:", config=config)
        try:
            for name in ("ducklake", "postgres", *(("httpfs",) if lake.remote else ())):
                load_extension(con, name)
            if lake.on_s3:  # a temporary secret, scoped to the data path
                con.execute(s3_secret_sql(lake.s3 or S3Settings(), lake.data_dir))
            elif not lake.remote:
                Path(lake.data_dir).mkdir(parents=True, exist_ok=True)
            _attach(con, lake)
            migrate_lake(con, lake.name)
            create_read_views(con, lake.name)
            # Lake files never change once written, so their footers can be cached.
            con.execute("SET parquet_metadata_cache = true")
            con.execute(f"SET allowed_directories = [{_quote(lake.data_dir)}]")
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        except DatabaseError:
            con.close()
            raise
        except (LakeExtensionError, LakeSchemaError, duckdb.Error, OSError, ValueError) as exc:
            con.close()
            raise DatabaseError(_first_line(exc), path=self.path) from exc
        self.con = con
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        """Close the connection; safe to call twice (a lake has nothing to checkpoint)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.con.close()


@dataclass(slots=True)
class LakeStorage:
    """What ``jobtrail serve`` runs on a lake: the database, its writer, the periodic tasks."""

    db: LakeDatabase
    writer: LakeWriter
    tasks: LakeTasks


def open_lake(
    lake: LakeConfig,
    *,
    lost_after_s: float,
    retention: LakeRetention | None = None,
    threads: int | None = None,
    memory_limit_bytes: int | None = None,
    **writer_limits: int,
) -> LakeStorage:
    """Attach the lake and build its writer and tasks (start the writer, then run the tasks).

    ``threads`` and ``memory_limit_bytes`` configure the private DuckDB, as
    ``exporters.duckdb.threads`` / ``memory_limit`` do for the embedded file.

    Raises:
        DatabaseError: The lake cannot be attached (extensions, catalog, data path, layout).
    """
    from jobtrail.storage._lake_tasks import LakeTasks
    from jobtrail.storage._lake_writer import LakeWriter

    db = LakeDatabase(lake, threads=threads, memory_limit_bytes=memory_limit_bytes)
    try:
        writer = LakeWriter(db, commit_interval_s=lake.commit_interval_s, **writer_limits)
        tasks = LakeTasks(db, writer, lost_after_s=lost_after_s, retention=retention)
    except BaseException:
        db.close()
        raise
    return LakeStorage(db, writer, tasks)


def _attach(con: duckdb.DuckDBPyConnection, lake: LakeConfig) -> None:
    """Attach the lake, retrying while another collector creates a new catalog."""
    options = [f"DATA_PATH {_quote(lake.data_dir)}"]
    if lake.data_inlining_row_limit is not None:
        options.append(f"DATA_INLINING_ROW_LIMIT {int(lake.data_inlining_row_limit)}")
    sql = f"ATTACH {_quote('ducklake:' + lake.catalog)} AS {lake.name} ({', '.join(options)})"
    for attempt in range(_ATTACH_ATTEMPTS):
        try:
            con.execute(sql)
            return
        except duckdb.Error as exc:
            text = str(exc).lower()
            racing = "duplicate key" in text or "already exists" in text or "conflict" in text
            if not racing or attempt == _ATTACH_ATTEMPTS - 1:
                raise DatabaseError(
                    f"cannot attach the lake: {_first_line(exc)}", path=lake.display
                ) from exc
            log.info("another collector is creating the lake catalog; retrying")
            time.sleep(0.1 * (attempt + 1))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
