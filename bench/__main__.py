"""``python -m bench [NAME ...] [--quick] [...]``: run benchmarks, print the table, save JSON.

Without a name ingest, query, agent, overload and peer run, in that order (the overload
benchmark reuses the ingest run's sustainable rate; peer is skipped without Prefect 3);
``ingest-full`` (ingest into the query benchmark's bulk database against an empty file) and
``lake`` (which starts a throwaway PostgreSQL) and ``writer`` (the writer alone, against a
floor of raw inserts) run when named. Each one's result goes to
``bench/results/<name>.json``; the table is printed at the end, and ``--markdown FILE``
writes it for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bench import _util as u

NAMES = ("ingest", "query", "agent", "overload", "peer", "ingest-full", "lake", "writer")
#: Run when no name is given (``lake`` needs PostgreSQL's binaries: ask for it by name).
DEFAULT_NAMES = ("ingest", "query", "agent", "overload", "peer")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help=f"benchmarks to run (default: all of {', '.join(NAMES)})")  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="small sizes and short runs (~4 min)")
    ap.add_argument("--repeats", type=int, help="repeats for ingest, agent and peer")
    ap.add_argument("--jobs", type=int, help="query: jobs in the bulk database (default 100000)")
    ap.add_argument("--full", action="store_true",
                    help="query: the issue's full size (1M jobs, 10M steps, 50M logs)")  # fmt: skip
    ap.add_argument("--query-repeats", type=int, help="query: requests per call")
    ap.add_argument("--overload-seconds", type=float, help="overload: duration (default 60)")
    ap.add_argument("--limit-mib", type=float, help="overload: memory_limiter.limit_mib")
    ap.add_argument("--duckdb-default-memory", action="store_true",
                    help="overload: leave DuckDB's memory_limit at its default")  # fmt: skip
    ap.add_argument("--no-profile", action="store_true", help="ingest: skip the py-spy run")
    ap.add_argument("--markdown", help="also write the table as Markdown to this file")
    args = ap.parse_args(argv)
    names = args.names or list(DEFAULT_NAMES)
    for n in names:
        if n not in NAMES:
            ap.error(f"unknown benchmark {n!r} (choose from {', '.join(NAMES)})")

    started = time.monotonic()
    info = u.machine()
    u.log(f"machine: {info}")
    results: dict[str, dict[str, Any]] = {}
    table_rows: list[tuple[str, ...]] = []
    if "ingest" in names:
        from bench import ingest

        t, p0 = time.monotonic(), u.cpu_pressure_total_us()
        res = ingest.run(quick=args.quick, repeats=args.repeats, profile=not args.no_profile)
        _keep(results, "ingest", res, info, t, p0)
        table_rows += ingest.rows(res)
    if "query" in names:
        from bench import query

        t, p0 = time.monotonic(), u.cpu_pressure_total_us()
        jobs = 1_000_000 if args.full else args.jobs
        res = query.run(quick=args.quick, jobs=jobs, repeats=args.query_repeats)
        file = "query" if jobs is None else f"query-{jobs}-jobs"  # other sizes: own file
        _keep(results, "query", res, info, t, p0, file=file)
        table_rows += query.rows(res)
    if "agent" in names:
        from bench import agent

        t, p0 = time.monotonic(), u.cpu_pressure_total_us()
        res = agent.run(quick=args.quick, repeats=args.repeats)
        _keep(results, "agent", res, info, t, p0)
        table_rows += agent.rows(res)
    if "overload" in names:
        from bench import overload

        t, p0 = time.monotonic(), u.cpu_pressure_total_us()
        sustainable = None
        if "ingest" in results:
            sustainable = results["ingest"]["summary"]["grpc_jobs"]["stored_records_s"]["median"]
        kwargs: dict[str, Any] = {}
        if args.limit_mib:
            kwargs["limit_mib"] = args.limit_mib
        if args.duckdb_default_memory:
            kwargs["duckdb_share"] = None
        res = overload.run(
            quick=args.quick, sustainable=sustainable, seconds=args.overload_seconds, **kwargs
        )
        _keep(results, "overload", res, info, t, p0)
        table_rows += overload.rows(res)

    if "peer" in names:
        from bench import peer

        t, p0 = time.monotonic(), u.cpu_pressure_total_us()
        res = peer.run(quick=args.quick, repeats=args.repeats)
        if "skipped" not in res:  # keep the last real result
            _keep(results, "peer", res, info, t, p0)
        table_rows += peer.rows(res)

    if "ingest-full" in names:
        from bench import ingest_full

        t, p0 = time.monotonic(), u.cpu_pressure_total_us()
        res = ingest_full.run(
            quick=args.quick, jobs=1_000_000 if args.full else args.jobs, repeats=args.repeats
        )
        _keep(results, "ingest-full", res, info, t, p0, file=f"ingest-full-{res['jobs']}-jobs")
        table_rows += ingest_full.rows(res)

    if "lake" in names:
        from bench import lake

        t, p0 = time.monotonic(), u.cpu_pressure_total_us()
        res = lake.run(quick=args.quick, jobs=args.jobs, repeats=args.query_repeats)
        _keep(results, "lake", res, info, t, p0)
        table_rows += lake.rows(res)

    if "writer" in names:
        from bench import writer

        t, p0 = time.monotonic(), u.cpu_pressure_total_us()
        res = writer.run(quick=args.quick, repeats=args.repeats)
        _keep(results, "writer", res, info, t, p0)
        table_rows += writer.rows(res)

    total = time.monotonic() - started
    header = ("benchmark", "figure", "median (min–max) or p50 / p95")
    text = u.table(table_rows, header)
    print()
    pressure = ", ".join(
        f"{n} {r['cpu_pressure_pct']:.0f}%"
        for n, r in results.items()
        if r.get("cpu_pressure_pct") is not None
    )
    print(
        f"machine: {info['nproc']} x {info['cpu_model']}, Python {info['python']}, "
        f"duckdb {info['duckdb']}, protobuf {info['protobuf']}; jobtrail {info['git']}; "
        f"total {total:.0f} s; CPU pressure (time some task waited for a CPU): {pressure}"
    )
    print(text)
    extra = []
    if "ingest" in results and results["ingest"].get("profile"):
        extra.append(profile_text(results["ingest"]["profile"]))
    if "agent" in results:
        from bench import agent

        extra.append(agent.profile_text(results["agent"]))
    for block in extra:
        print()
        print(block)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n\n".join([text, *extra]) + "\n")
    return 0


def _keep(
    results: dict[str, dict[str, Any]],
    name: str,
    res: dict[str, Any],
    info: dict[str, Any],
    started: float,
    pressure0: int | None,
    *,
    file: str | None = None,
) -> None:
    """Stamp a result with the machine, duration and CPU pressure; save it as JSON."""
    res["machine"], res["seconds"] = info, time.monotonic() - started
    res["cpu_pressure_pct"] = _pressure(pressure0, started)
    u.write_result(file or name, res)
    results[name] = res


def _pressure(p0: int | None, t0: float) -> float | None:
    """% of the time some task waited for a CPU since ``t0`` (machine contention)."""
    p1 = u.cpu_pressure_total_us()
    if p0 is None or p1 is None:
        return None
    return 100 * (p1 - p0) / 1e6 / (time.monotonic() - t0)


def profile_text(prof: dict[str, Any]) -> str:
    """The ingest profile as two Markdown tables (self, inclusive)."""
    lines = [
        f"Server profile under gRPC job-trace load (py-spy, {prof['samples']} samples of "
        f"busy threads; {', '.join(f'{k} {v:.0f}%' for k, v in prof['threads'].items())}):",
        "",
    ]
    rows_self = [(f"{pct:.1f}%", fn) for fn, pct in prof["self"]]
    lines.append(u.table(rows_self, ("self", "function (top 20 by own time)")))
    lines.append("")
    rows_incl = [(f"{pct:.1f}%", fn) for fn, pct in prof["inclusive"]]
    lines.append(u.table(rows_incl, ("inclusive", "function (top 20 by time in it and below)")))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
