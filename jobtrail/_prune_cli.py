"""``jobtrail prune``: apply the retention policy to a database file no server has open.

A running server applies the same policy itself, at start and every ``interval``; this
command is for a file on its own (a copy, an archive, a server stopped for maintenance).
``--dry-run`` opens the file read-only and prints what a pass would remove.

    $ jobtrail prune --db jobtrail.duckdb --dry-run
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

_DEFAULT_CONFIG = "otel-config.yaml"
_COLUMNS = ("jobs", "steps", "logs", "spans", "metrics")


def add_prune_parser(sub: Any) -> None:
    """Register ``prune`` on the ``jobtrail`` command's subparsers."""
    p = sub.add_parser("prune", help="apply retention to a database file no server has open")
    p.add_argument("--db", help="DuckDB file (default: the config's, else ./jobtrail.duckdb)")
    p.add_argument("--config", help=f"config file (default: ./{_DEFAULT_CONFIG} if present)")
    p.add_argument(
        "--dry-run", action="store_true", help="print what would be removed; change nothing"
    )
    p.set_defaults(func=cmd_prune)


def _fail(message: str, code: int = 1) -> int:
    print(f"jobtrail prune: {message}", file=sys.stderr)
    return code


def fmt_duration(seconds: float) -> str:
    """``2592000`` -> ``30d``: the largest unit that divides it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def fmt_bytes(n: float) -> str:
    """``10737418240`` -> ``10.0 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def render(report: Any, policy: Any) -> str:
    """The report as a table, one row per reason a row goes."""
    verb = "would remove" if report.dry_run else "removed"
    cap = policy.max_logs_per_job
    lines = [
        f"policy: finished jobs after {fmt_duration(policy.max_age_s)}, logs of no job after "
        f"{fmt_duration(policy.logs_max_age_s)}, "
        + (f"at most {cap} logs per job, " if cap else "no log cap, ")
        + (
            f"at most {fmt_bytes(policy.max_size_bytes)}"
            if policy.max_size_bytes
            else "no size cap"
        ),
        f"{verb + ':':<34}" + "".join(f"{c:>10}" for c in _COLUMNS),
    ]
    rows = [
        (f"finished jobs older than {fmt_duration(policy.max_age_s)}", report.expired),
        ("records of no job", report.unowned),
        (f"logs over the cap ({report.capped.jobs} jobs)", None),
        ("size cap, oldest finished jobs", report.oversize),
    ]
    for label, removed in rows:
        if removed is None:
            cells = ["-", "-", str(report.capped.logs), "-", "-"]
        else:
            cells = [str(getattr(removed, c)) for c in _COLUMNS]
            if report.dry_run and removed is report.oversize:
                cells = [f"~{cells[0]}" if report.oversize.jobs else "0", "-", "-", "-", "-"]
        lines.append(f"  {label:<32}" + "".join(f"{c:>10}" for c in cells))
    if report.used_bytes_before is not None:
        if report.dry_run:
            freed = report.estimated_bytes or 0
            lines.append(
                f"data: {fmt_bytes(report.used_bytes_before)}; would free about {fmt_bytes(freed)}"
            )
        elif report.used_bytes_after is not None:
            lines.append(
                f"data: {fmt_bytes(report.used_bytes_before)} -> "
                f"{fmt_bytes(report.used_bytes_after)}"
            )
    if report.size_cap_met is False:
        lines.append("size cap cannot be met: running jobs and records of no job alone exceed it")
    return "\n".join(lines)


def _dry_run(path: Path, policy: Any) -> int:
    import duckdb

    from jobtrail.storage.retention import plan
    from jobtrail.storage.schema import SCHEMA_VERSION, SchemaError, current_version

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "lock" in text.lower():
            return _fail(
                f"{path}: in use by a running jobtrail server (it applies retention itself)"
            )
        return _fail(f"{path}: cannot open: {text}")
    try:
        version = current_version(con)
        if version != SCHEMA_VERSION:
            return _fail(
                f"{path}: schema version {version}, this jobtrail reads {SCHEMA_VERSION}; "
                "run without --dry-run (or start the server) to upgrade it first"
            )
        report = plan(con, policy)
    except (SchemaError, duckdb.Error) as exc:
        return _fail(f"{path}: {str(exc).splitlines()[0]}")
    finally:
        con.close()
    print(f"jobtrail prune: {path.resolve()} (dry run: nothing changed)")
    print(render(report, policy))
    return 0


def _prune(path: Path, policy: Any) -> int:
    from jobtrail.storage import Database, DatabaseError
    from jobtrail.storage.retention import direct_runner, prune

    try:
        db = Database(path)
    except DatabaseError as exc:
        return _fail(str(exc))
    try:
        report = asyncio.run(prune(direct_runner(db.con), policy))
    finally:
        db.close()
    print(f"jobtrail prune: {path.resolve()}")
    print(render(report, policy))
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    """Run ``jobtrail prune``; exit 0 done, 1 the file cannot be pruned, 2 bad config."""
    from jobtrail.config import ConfigError, ServerConfig

    config_path = args.config
    if config_path is None and Path(_DEFAULT_CONFIG).exists():
        config_path = _DEFAULT_CONFIG
    try:
        cfg = ServerConfig.load(config_path).with_overrides(db_path=args.db)
        policy = cfg.retention_policy()
    except (ConfigError, ValueError) as exc:
        return _fail(f"configuration error: {exc}", 2)
    if getattr(cfg, "lake_catalog", None) and not args.db:
        return _fail("the configured store is a DuckLake; its server prunes it (use --db FILE)", 2)
    path = Path(cfg.db_path)
    if not path.is_file():
        return _fail(f"{path}: no such database file")
    return _dry_run(path, policy) if args.dry_run else _prune(path, policy)
