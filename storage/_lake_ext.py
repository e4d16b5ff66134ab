"""Loading the DuckDB extensions a lake needs: ``ducklake`` and ``postgres`` (and ``httpfs``).

The server's DuckDB instance never downloads or autoloads extensions (user SQL reaches it),
so the lake backend loads them explicitly, once, before the configuration is locked. Each
extension comes from one of two places:

* the ``jobtrail[lake]`` extra: the ``duckdb-extension-ducklake`` and
  ``duckdb-extension-postgres`` wheels carry the extension files built for one duckdb
  release; they are installed into DuckDB's extension directory from the wheel (no network);
* DuckDB's own ``INSTALL ducklake; INSTALL postgres;`` run once with network access (for a
  duckdb release the wheels do not cover), which this module then only ``LOAD``\\ s.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb

#: Extension name -> the Python package that ships its file (the ``lake`` extra).
PACKAGES = {"ducklake": "duckdb_extension_ducklake", "postgres": "duckdb_extension_postgres"}
#: The duckdb release those wheels are built for (they pin it).
WHEEL_DUCKDB = "1.5.5"


class LakeExtensionError(RuntimeError):
    """A DuckDB extension the lake needs cannot be loaded; the message says how to get it."""


def packaged_extension(name: str) -> Path | None:
    """The extension file shipped in a wheel for the running duckdb, or None."""
    package = PACKAGES.get(name)
    spec = importlib.util.find_spec(package) if package else None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "extensions" / f"v{duckdb.__version__}"
    path = path / f"{name}.duckdb_extension"
    return path if path.is_file() else None


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load ``name``; when it is not installed yet, install it from its wheel first.

    Raises:
        LakeExtensionError: Neither the wheel nor an earlier ``INSTALL`` provides it.
    """
    try:
        con.execute(f"LOAD {name}")  # installed before (by an earlier start, or INSTALL)
        return
    except duckdb.Error:
        pass
    path = packaged_extension(name)
    try:
        if path is not None:
            quoted = str(path).replace("'", "''")
            con.execute(f"INSTALL '{quoted}'")  # a copy into the extension directory, once
        con.execute(f"LOAD {name}")
    except duckdb.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        hint = (
            f"install the offline wheels with `pip install 'jobtrail[lake]'` (built for duckdb "
            f"{WHEEL_DUCKDB}) or run `INSTALL {name};` once in duckdb "
            f"{duckdb.__version__} with network access"
            if name in PACKAGES
            else f"run `INSTALL {name};` once in duckdb {duckdb.__version__} with network access"
        )
        raise LakeExtensionError(
            f"DuckDB extension {name!r} cannot be loaded ({first}); {hint}"
        ) from exc
