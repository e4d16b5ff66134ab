"""``jobtrail export``: jobs, steps, logs and spans of a time window as Parquet, CSV or JSON lines.

    $ jobtrail export --since 2026-11-01 --until 2026-11-08 --to ./week45
    $ jobtrail export --db archive.duckdb --to ./all --format csv

While a server runs, it holds the database file, so the export reads through the server's
read-only SQL route (``--api``, default ``$JOBTRAIL_API`` or ``http://127.0.0.1:8080``);
``--db`` reads a file no server has open (a stopped server's, a copy, an archive).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from rich.console import Console

from jobtrail.storage.export import FORMATS, Fetch, export

_PAGE_ROWS = 50_000
_DEFAULT_API = "http://127.0.0.1:8080"


def add_export_parser(sub: Any) -> None:
    """Register ``export`` on the ``jobtrail`` command's subparsers."""
    p = sub.add_parser(
        "export", help="write jobs, steps, logs and spans as Parquet (by day), CSV or JSON lines"
    )
    p.add_argument("--to", required=True, help="output directory")
    p.add_argument("--since", help="start of the window (RFC 3339 or YYYY-MM-DD, UTC)")
    p.add_argument("--until", help="end of the window, exclusive")
    p.add_argument("--format", default="parquet", help=f"one of: {', '.join(FORMATS)}")
    p.add_argument("--db", help="read this database file (no server may have it open)")
    p.add_argument("--api", help="read through this server (default $JOBTRAIL_API or local)")
    p.set_defaults(func=cmd_export)


def _time(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{flag}: expected RFC 3339 or YYYY-MM-DD, got {text!r}") from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _file_fetch(path: str) -> tuple[Fetch, Any]:
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such database file")
    try:
        con = duckdb.connect(path, read_only=True)
    except duckdb.Error as exc:
        text = str(exc).lower()
        if "lock" in text:
            raise ValueError(
                f"{path} is in use by a running server; export through it with --api URL, "
                "or stop it first"
            ) from None
        raise ValueError(f"{path}: {str(exc).splitlines()[0]}") from None

    def fetch(sql: str, params: list[Any]) -> pa.Table:
        return con.execute(sql, params).to_arrow_table()

    return fetch, con


def _api_fetch(url: str | None) -> Fetch:
    from jobtrail._sql_cli import post_sql
    from jobtrail.client import ApiClient

    base = (url or os.environ.get("JOBTRAIL_API") or _DEFAULT_API).rstrip("/")
    api = ApiClient(base, token=os.environ.get("JOBTRAIL_TOKEN"), timeout_s=120.0)

    def fetch(sql: str, params: list[Any]) -> pa.Table:
        body = post_sql(api, sql, params=params, limit=_PAGE_ROWS, fmt="arrow")
        return pa.ipc.open_stream(body).read_all()

    return fetch


def cmd_export(args: argparse.Namespace) -> int:
    """Run the export; 0 on success, 2 on bad arguments, 1 when the source fails."""
    err = Console(stderr=True)
    try:
        since, until = _time(args.since, "--since"), _time(args.until, "--until")
        if args.format not in FORMATS:
            raise ValueError(f"--format: expected one of {', '.join(FORMATS)}, got {args.format!r}")
        if since is not None and until is not None and until <= since:
            raise ValueError("--until must be later than --since")
        closing = None
        if args.db:
            fetch, closing = _file_fetch(args.db)
        else:
            fetch = _api_fetch(args.api)
    except ValueError as exc:
        print(f"jobtrail: {exc}", file=sys.stderr)
        return 2
    to = Path(args.to)
    try:
        with err.status("exporting ...") as status:

            def progress(table: str, rows: int) -> None:
                status.update(f"exporting {table}: {rows:,} rows")

            counts = export(
                fetch, to, since=since, until=until, fmt=args.format, page_rows=_PAGE_ROWS,
                on_page=progress,
            )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - any source failure is reported, not a traceback
        print(f"jobtrail: export failed: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    finally:
        if closing is not None:
            closing.close()
    suffix = "" if args.format == "parquet" else f".{args.format}"
    for table, rows in counts.items():
        print(f"{table}: {rows:,} rows -> {to / table}{suffix}")
    return 0
