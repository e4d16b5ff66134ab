"""``jobtrail prune``: apply the retention policy to a database file no server has open,
or run one upkeep pass on a DuckLake now.

A running server applies the same policy itself, at start and every ``interval``; this
command is for a file on its own (a copy, an archive, a server stopped for maintenance).
``--dry-run`` opens the file read-only and prints what a pass would remove.

When the configuration names a lake (``exporters.duckdb.lake``) and no ``--db`` is given,
it prunes the lake instead: a lake is made for several processes, so this works while its
collectors run. One pass deletes by age, applies the log cap, then compacts and expires old
snapshots (:mod:`jobtrail.storage._lake_maintenance`); ``--dry-run`` counts the deletes and
changes no data (opening the lake brings its layout up to date, as a collector's start does).

    $ jobtrail prune --db jobtrail.duckdb --dry-run
    $ jobtrail prune --config lake.yaml
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
    p = sub.add_parser(
        "prune", help="apply retention to a database file no server has open, or to a lake"
    )
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


def render_lake(report: Any, retention: Any) -> str:
    """A lake pass's report: jobs and rows by table deleted, the cap's work, the upkeep."""
    verb = "would remove" if report.dry_run else "removed"
    cap = retention.max_logs_per_job
    logs_age = retention.system_logs_max_age_s or retention.max_age_s
    deleted = dict(report.deleted)
    jobs = deleted.pop("jobs", 0)
    tables = ", ".join(f"{t} {n}" for t, n in sorted(deleted.items())) or "none"
    lines = [
        f"policy: finished jobs after {fmt_duration(retention.max_age_s)}, logs of no job after "
        f"{fmt_duration(logs_age)}, "
        + (f"at most {cap} logs per job" if cap else "no log cap")
        + " (a lake has no size cap)",
        f"{verb}: {jobs} finished jobs older than {fmt_duration(retention.max_age_s)} "
        "and records of no job past their age",
        f"  rows by table: {tables}",
        f"  logs over the cap: {report.capped.logs} of {report.capped.jobs} jobs",
    ]
    upkeep = [s for s in report.done if s not in ("age", "cap")]
    if upkeep:
        lines.append(f"upkeep: {', '.join(upkeep)}")
    lines.extend(f"skipped {step}: {why}" for step, why in report.skipped.items())
    return "\n".join(lines)


def _prune_lake(cfg: Any, *, dry_run: bool) -> int:
    from jobtrail.storage import DatabaseError
    from jobtrail.storage._lake_maintenance import maintain
    from jobtrail.storage.lake import LakeConfig, LakeDatabase

    try:
        lake = LakeConfig(catalog=cfg.lake_catalog, data_path=cfg.lake_data_path)
        retention = cfg.lake_retention()
    except ValueError as exc:
        return _fail(f"configuration error: {exc}", 2)
    try:
        db = LakeDatabase(lake)
    except DatabaseError as exc:
        return _fail(str(exc))
    try:
        report = maintain(db, retention, ages=True, compact=not dry_run, dry_run=dry_run)
    finally:
        db.close()
    print(f"jobtrail prune: {lake.display}" + (" (dry run: nothing changed)" if dry_run else ""))
    print(render_lake(report, retention))
    failed = [step for step in ("age", "cap") if step in report.skipped]
    if failed:
        # Another collector deleting at the same moment conflicts: the next pass will do.
        return _fail(f"{' and '.join(failed)} did not run (see above); try again")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    """Run ``jobtrail prune``; exit 0 done, 1 the file or lake cannot be pruned, 2 bad config."""
    from jobtrail.config import ConfigError, ServerConfig

    config_path = args.config
    if config_path is None and Path(_DEFAULT_CONFIG).exists():
        config_path = _DEFAULT_CONFIG
    try:
        cfg = ServerConfig.load(config_path).with_overrides(db_path=args.db)
        policy = cfg.retention_policy()
    except (ConfigError, ValueError) as exc:
        return _fail(f"configuration error: {exc}", 2)
    if cfg.lake_catalog is not None and not args.db:
        return _prune_lake(cfg, dry_run=args.dry_run)
    path = Path(cfg.db_path)
    if not path.is_file():
        return _fail(f"{path}: no such database file")
    return _dry_run(path, policy) if args.dry_run else _prune(path, policy)
