"""The ``jobtrail`` command: serve, demo, and terminal views of jobs, logs and stats."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

_DEFAULT_CONFIG = "otel-config.yaml"
_DEFAULT_API = "http://127.0.0.1:8080"


def _api_url(args: argparse.Namespace) -> str:
    return str(args.api or os.environ.get("JOBTRAIL_API") or _DEFAULT_API).rstrip("/")


def _cmd_serve(args: argparse.Namespace) -> int:
    from jobtrail.config import ConfigError, ServerConfig
    from jobtrail.server import serve
    from jobtrail.storage import DatabaseError

    config_path = args.config
    if config_path is None and Path(_DEFAULT_CONFIG).exists():
        config_path = _DEFAULT_CONFIG
    try:
        cfg = ServerConfig.load(config_path).with_overrides(
            db_path=args.db,
            grpc_port=args.grpc_port,
            http_port=args.http_port,
            api_port=args.api_port,
            grpc_host=args.host,
            http_host=args.host,
            api_host=args.host,
            lake_catalog=args.lake_catalog,
            lake_data_path=args.lake_data_path,
        )
        if (cfg.lake_catalog is None) != (cfg.lake_data_path is None):
            raise ConfigError("a lake needs both --lake-catalog and --lake-data-path")
    except ConfigError as exc:
        print(f"jobtrail: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(cfg, ready_file=args.ready_file, demo=args.demo))
    except DatabaseError as exc:
        print(f"jobtrail: cannot open database: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"jobtrail: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from jobtrail.config import ConfigError, ServerConfig

    try:
        ServerConfig.load(args.file)
    except ConfigError as exc:
        print(f"jobtrail: {exc}", file=sys.stderr)
        return 2
    print(f"{args.file}: ok")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from jobtrail.demo import run_demo

    return run_demo(endpoint=args.endpoint, jobs=args.jobs)


def _cmd_jobs(args: argparse.Namespace) -> int:
    from jobtrail import client

    if args.watch and (args.status or args.q):
        print("jobtrail: --watch shows active jobs; it takes --type only", file=sys.stderr)
        return 2
    return client.cmd_jobs(
        _api_url(args),
        type=args.type,
        status=args.status,
        q=args.q,
        limit=args.limit,
        watch=args.watch,
        json_output=args.json,
    )


def _cmd_job(args: argparse.Namespace) -> int:
    from jobtrail import client

    return client.cmd_job(_api_url(args), args.id, json_output=args.json)


def _cmd_logs(args: argparse.Namespace) -> int:
    from jobtrail import client

    return client.cmd_logs(
        _api_url(args),
        args.id,
        level=args.level,
        step=args.step,
        span_id=args.span_id,
        q=args.q,
        events=args.events,
        follow=args.follow,
        json_output=args.json,
    )


def _cmd_stats(args: argparse.Namespace) -> int:
    from jobtrail import client

    return client.cmd_stats(
        _api_url(args),
        type=args.type,
        owner=args.owner,
        service=args.service,
        since=args.since,
        json_output=args.json,
    )


def _cmd_sql(args: argparse.Namespace) -> int:
    from jobtrail._sql_cli import cmd_sql, parse_param

    return cmd_sql(
        _api_url(args),
        args.sql,
        params=[parse_param(v) for v in args.param],
        limit=args.limit,
        fmt=args.format,
        output=args.output,
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (public so the docs and tests can list the commands)."""
    parser = argparse.ArgumentParser(
        prog="jobtrail", description="OpenTelemetry-native background job tracker."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the OTLP collector, the API and the web page")
    p.add_argument("--config", help=f"config file (default: ./{_DEFAULT_CONFIG} if present)")
    p.add_argument("--db", help="DuckDB file (default: ./jobtrail.duckdb)")
    p.add_argument("--host", help="interface for all listeners (default 127.0.0.1)")
    p.add_argument("--grpc-port", type=int, help="OTLP/gRPC port (default 4317; 0 = any)")
    p.add_argument("--http-port", type=int, help="OTLP/HTTP port (default 4318; 0 = any)")
    p.add_argument("--api-port", type=int, help="API and web page port (default 8080; 0 = any)")
    p.add_argument("--ready-file", help="write the bound endpoints as JSON here once listening")
    p.add_argument("--demo", action="store_true", help="also run the demo jobs once started")
    p.add_argument(
        "--lake-catalog", metavar="postgres:CONNINFO",
        help="store in a DuckLake with this PostgreSQL catalog instead of the file "
        "(several servers can share it; see docs/scaling.md)",
    )  # fmt: skip
    p.add_argument(
        "--lake-data-path", metavar="DIR_OR_URL",
        help="the lake's Parquet files: a shared directory or s3://bucket/prefix",
    )  # fmt: skip
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("validate-config", help="check a config file and exit")
    p.add_argument("file")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("demo", help="send realistic sample jobs to a running server")
    p.add_argument("--endpoint", default=None, help="OTLP/gRPC endpoint (default from OTEL_*)")
    p.add_argument("--jobs", type=int, default=12, help="how many top-level jobs to run")
    p.set_defaults(func=_cmd_demo)

    def api_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--api", help=f"API base URL (default $JOBTRAIL_API or {_DEFAULT_API})")
        p.add_argument("--json", action="store_true", help="print JSON for scripts")

    p = sub.add_parser("jobs", help="list recent jobs")
    p.add_argument("--type")
    p.add_argument("--status", help="comma list, e.g. failed,running")
    p.add_argument("-q", dest="q", help="text search")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument(
        "-w", "--watch", action="store_true",
        help="live table of running jobs until Ctrl-C (with --json: one line per job event)",
    )  # fmt: skip
    api_args(p)
    p.set_defaults(func=_cmd_jobs)

    p = sub.add_parser("job", help="show one job with its steps")
    p.add_argument("id")
    api_args(p)
    p.set_defaults(func=_cmd_job)

    p = sub.add_parser("logs", help="show a job's logs")
    p.add_argument("id")
    p.add_argument("--level", help="comma list: debug,info,success,warn,error,fatal")
    p.add_argument("--step")
    p.add_argument("--span-id", help="one run of a step: its span id (see `jobtrail job`)")
    p.add_argument("-q", dest="q", help="text search")
    p.add_argument(
        "--events", action="store_true", help="include progress updates and other lifecycle records"
    )
    p.add_argument(
        "-f", "--follow", action="store_true",
        help="keep printing new records until the job ends; exit 0 if it completed, else 1",
    )  # fmt: skip
    api_args(p)
    p.set_defaults(func=_cmd_logs)

    p = sub.add_parser("stats", help="job and log statistics")
    p.add_argument("--type")
    p.add_argument("--owner", help="only jobs of this owner (and their logs)")
    p.add_argument("--service", help="only jobs of this service (and their logs)")
    p.add_argument("--since", help="RFC 3339 time")
    api_args(p)
    p.set_defaults(func=_cmd_stats)

    p = sub.add_parser(
        "sql", help="run one read-only SELECT through the server (tables: docs/schema.md)"
    )
    p.add_argument("sql", help='e.g. "SELECT status, count(*) FROM jobs GROUP BY ALL"; - = stdin')
    p.add_argument(
        "-p", "--param", action="append", default=[],
        help="value for the next ? / $1 placeholder (JSON if it parses, else text); repeatable",
    )  # fmt: skip
    p.add_argument("--limit", type=int, help="most rows (server default 1000, max 100000)")
    p.add_argument("--format", choices=("table", "json", "csv", "parquet"), default="table")
    p.add_argument("-o", "--output", help="write to this file (required for parquet)")
    p.add_argument("--api", help=f"API base URL (default $JOBTRAIL_API or {_DEFAULT_API})")
    p.set_defaults(func=_cmd_sql)
    from jobtrail._run import add_run_parser

    add_run_parser(sub)
    from jobtrail._prune_cli import add_prune_parser

    add_prune_parser(sub)
    from jobtrail._export_cli import add_export_parser

    add_export_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jobtrail`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
