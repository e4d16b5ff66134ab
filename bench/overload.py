"""5. Memory under overload: RSS at ~10x the sustainable rate with a memory limit set.

The sustainable rate is the closed-loop gRPC stored rate (from the ingest benchmark of the
same run when there is one, else measured here for a few seconds). The server then gets
``processors.memory_limiter.limit_mib`` (and ``exporters.duckdb.memory_limit`` a quarter of
it, as the README advises; ``--duckdb-default-memory`` leaves DuckDB's default) and is
offered 10x that rate open-loop (generators send at a fixed rate whatever the answers, no
retries, up to 512 requests in flight each, like many clients)
for ``--seconds``. RSS is sampled every 100 ms; refusals are counted by the generators
(UNAVAILABLE answers) and by the server's ``/metrics``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import _util as u
from bench.ingest import CONCURRENCY, _generators, _reap, server_run

LIMIT_MIB = 512
IN_FLIGHT = 512  # per generator: many clients, as at 10x the load
#: ``exporters.duckdb.memory_limit`` as a share of ``limit_mib`` (README: "a quarter").
DUCKDB_SHARE = 0.25


def run(
    *, quick: bool = False, sustainable: float | None = None, limit_mib: float = LIMIT_MIB,
    factor: float = 10.0, seconds: float | None = None, duckdb_share: float | None = DUCKDB_SHARE,
) -> dict[str, Any]:  # fmt: skip
    """Overload the server; returns the JSON-ready result."""
    seconds = seconds or (15.0 if quick else 60.0)
    workdir = Path(tempfile.mkdtemp(prefix="jobtrail-bench-overload-"))
    measured_here = sustainable is None
    if sustainable is None:
        u.log("overload: measuring the sustainable rate (closed loop, gRPC)")
        sustainable = server_run(
            workdir,
            transport="grpc",
            workload="jobs",
            generators=2,
            concurrency=CONCURRENCY,
            seconds=8.0,
        )["stored_records_s"]
    offered = sustainable * factor
    generators = 2
    db = workdir / "overload.duckdb"
    config: dict[str, Any] = {"processors": {"memory_limiter": {"limit_mib": limit_mib}}}
    duckdb_mib = None if duckdb_share is None else max(16, int(limit_mib * duckdb_share))
    if duckdb_mib is not None:  # as README advises for a memory-bounded server
        config["exporters"] = {"duckdb": {"memory_limit": f"{duckdb_mib}MiB"}}
    server = u.Server(workdir, db, config=config).start()
    u.log(
        f"overload: offering {offered:,.0f} records/s ({factor:g}x {sustainable:,.0f}) for "
        f"{seconds:.0f} s, limit_mib={limit_mib:g}"
    )
    try:
        idle_rss = u.rss_bytes(server.pid)
        with u.RssSampler(server.pid, 0.1) as sampler:
            extra = ("--rate", str(offered / generators), "--no-retry")
            procs = _generators(server, "grpc", generators, seconds, IN_FLIGHT, "jobs", extra, 10)
            t0 = time.monotonic()
            stored0 = server.stored()
            results, gen_cpu = _reap(procs)
            wall = time.monotonic() - t0
            stored1 = server.stored()
            metrics = server.metrics()
            # Recovery: after the overload, does a normal closed-loop client get through?
            drain_deadline = time.monotonic() + 30
            while time.monotonic() < drain_deadline:
                if u.metric_sum(server.metrics(), "jobtrail_queue_records") == 0:
                    break
                time.sleep(0.2)
            rec_seconds = 6.0
            rec0, t_rec = server.stored(), time.monotonic()
            rec_results, _ = _reap(
                _generators(server, "grpc", 2, rec_seconds, 4, "jobs", ("--no-retry",), 20)
            )
            recovery_rate = (server.stored() - rec0) / (time.monotonic() - t_rec)
        peak_hwm = u.peak_rss_bytes(server.pid)
    finally:
        server.stop()
    log_text = (workdir / "server.log").read_text(errors="replace")
    shutil.rmtree(workdir, ignore_errors=True)
    outcomes: Counter[str] = Counter()
    offered_records = 0
    for r in results:
        outcomes.update(r.get("outcomes", {}))
    for r in results:
        offered_records += int(r.get("acked_spans", 0)) + int(r.get("acked_logs", 0))
    series = sampler.samples
    over = [s for _, s in series if s > limit_mib * 2**20]
    return {
        "config": {
            "limit_mib": limit_mib,
            "duckdb_memory_limit_mib": duckdb_mib,
            "factor": factor,
            "seconds": seconds,
            "generators": generators,
            "in_flight_per_generator": IN_FLIGHT,
        },  # fmt: skip
        "sustainable_records_s": sustainable,
        "sustainable_measured_here": measured_here,
        "offered_records_s": offered,
        "stored_records_s": (stored1 - stored0) / wall,
        "goodput_over_sustainable": (stored1 - stored0) / wall / sustainable,
        "idle_rss_mib": idle_rss / 2**20,
        "peak_rss_mib": max(peak_hwm, sampler.peak) / 2**20,
        "peak_over_limit": max(peak_hwm, sampler.peak) / (limit_mib * 2**20),
        "samples_over_limit": len(over),
        "samples": len(series),
        "rss_series_mib": [
            (round(t, 1), round(s / 2**20)) for t, s in series[:: max(1, len(series) // 120)]
        ],
        "client_outcomes": dict(outcomes),
        "refused_requests_client": outcomes.get("refused", 0),
        "server_refused_records": u.metric_sum(metrics, "jobtrail_records_refused_total"),
        "server_requests": u.metric_sum(metrics, "jobtrail_requests_total"),
        "recovery_stored_records_s": recovery_rate,
        "recovery_over_sustainable": recovery_rate / sustainable,
        "recovery_outcomes": dict(
            sum((Counter(r.get("outcomes", {})) for r in rec_results), Counter())
        ),
        "rss_after_mib": series[-1][1] / 2**20 if series else None,
        "memory_limit_warnings": log_text.count("soft limit"),
        "generator_cpu_s": gen_cpu,
    }


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    """Table rows."""
    lim = result["config"]["limit_mib"]
    ok = result["peak_rss_mib"] <= lim
    return [
        ("overload", "offered / sustainable records/s",
         f"{result['offered_records_s']:,.0f} / {result['sustainable_records_s']:,.0f}"),
        ("overload", "stored during overload / sustainable",
         f"{result['goodput_over_sustainable']:.2f}"),
        ("overload", f"peak RSS vs limit_mib={lim:g} (duckdb memory_limit "
         f"{result['config'].get('duckdb_memory_limit_mib') or 'default'})",
         f"{result['peak_rss_mib']:.0f} MiB = {result['peak_over_limit']:.2f}x limit"
         + (" ✓" if ok else " ✗")),
        ("overload", "refused requests (client) / refused records (server /metrics)",
         f"{result['refused_requests_client']:,} / {result['server_refused_records']:,.0f}"),
        ("overload", "after overload: closed-loop stored / sustainable",
         f"{result['recovery_over_sustainable']:.2f} (outcomes {result['recovery_outcomes']})"),
    ]  # fmt: skip
