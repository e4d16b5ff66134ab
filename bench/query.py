"""2. Query latency: API calls against a bulk-generated database, p50/p95 per call.

The database comes from :mod:`bench.bulkgen` (default 100k jobs / 1M steps / 5M logs;
``--full`` is the issue's 1M jobs). It is generated once per size and ``bulkgen.VERSION``
and cached under ``$TMPDIR/jobtrail-bench-cache``; every run serves a fresh copy, so the
server's own writes (the lost-job sweeper) never leak into the next run. Each call is
made ``--repeats`` times, sequentially, from this process over HTTP (the client's own
share is the ``/healthz`` row), with different job ids where the call takes one.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from bench import _util as u
from bench import bulkgen

CACHE = Path(tempfile.gettempdir()) / "jobtrail-bench-cache"

#: (group, target p95 ms or None)
TARGETS = {"list": 50.0, "detail": 50.0, "job logs": 50.0, "stats": 300.0}


def _cached_db(jobs: int, logs_per_job: int) -> tuple[Path, dict[str, Any]]:
    """The bulk database for this size, generated on first use."""
    version = f"v{bulkgen.VERSION}-duckdb{duckdb.__version__}"
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"bulk-{jobs}-{logs_per_job}-{version}.duckdb"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return path, json.loads(meta.read_text())
    for old in CACHE.glob(f"bulk-{jobs}-{logs_per_job}-*"):
        old.unlink()
    u.log(f"query: generating {jobs:,} jobs, {jobs * logs_per_job:,} logs (cached afterwards)")
    info = bulkgen.generate(path, jobs=jobs, logs_per_job=logs_per_job)
    meta.write_text(json.dumps(info))
    return path, info


def _samples(db: Path, n: int, seed: int = 7) -> dict[str, Any]:
    """Job ids and log ids to ask about, picked before the server starts."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rng = random.Random(seed)
        total = con.execute("SELECT count(*) FROM jobs").fetchone()[0]  # type: ignore[index]
        picks = sorted(rng.sample(range(total), min(n, total)))
        ids = [
            r[0]
            for r in con.execute(
                "SELECT id FROM (SELECT id, row_number() OVER (ORDER BY started_at, id) - 1 AS k "
                "FROM jobs WHERE status <> 'pending') WHERE list_contains($k, k)",
                {"k": picks},
            ).fetchall()
        ]
        rng.shuffle(ids)
        firsts = dict(
            con.execute(
                "SELECT job_id, min(id) FROM logs WHERE list_contains($ids, job_id) GROUP BY 1",
                {"ids": ids},
            ).fetchall()
        )
        parents = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT parent_job_id FROM jobs WHERE parent_job_id IS NOT NULL "
                "ORDER BY hash(parent_job_id) LIMIT $n",
                {"n": n},
            ).fetchall()
        ]
        max_log = con.execute("SELECT max(id) FROM logs").fetchone()[0]  # type: ignore[index]
    finally:
        con.close()
    return {"ids": ids, "first_log": firsts, "parents": parents, "max_log_id": max_log}


def _calls(s: dict[str, Any]) -> list[tuple[str, str, Callable[[int], tuple[str, dict[str, Any]]]]]:
    ids, parents, first = s["ids"], s["parents"], s["first_log"]

    def job(i: int) -> str:
        return str(ids[i % len(ids)])

    def logs_after(i: int) -> dict[str, Any]:
        return {"after_id": first.get(job(i), 1) + 25}

    return [
        ("baseline", "GET /healthz", lambda i: ("/healthz", {})),
        ("list", "jobs, no filter", lambda i: ("/api/jobs", {})),
        ("list", "jobs ?type=", lambda i: ("/api/jobs", {"type": bulkgen.TYPES[i % 8]})),
        ("list", "jobs ?status=failed", lambda i: ("/api/jobs", {"status": "failed"})),
        ("list", "jobs ?status=running,lost", lambda i: ("/api/jobs", {"status": "running,lost"})),
        ("list", "jobs ?owner=", lambda i: ("/api/jobs", {"owner": f"user{i % 20}"})),
        ("list", "jobs ?service=", lambda i: ("/api/jobs", {"service": bulkgen.SERVICES[i % 5]})),
        ("list", "jobs ?since=24h", lambda i: ("/api/jobs", {"since": "24h"})),
        ("list", "jobs ?since=&until= (1 h, 10 days ago)",
         lambda i: ("/api/jobs", {"since": "241h", "until": "240h"})),
        ("list", "jobs ?q= (name text)", lambda i: ("/api/jobs", {"q": f"batch {100 + i}"})),
        ("list", "jobs ?parent=none", lambda i: ("/api/jobs", {"parent": "none"})),
        ("list", "jobs ?parent=<id>",
         lambda i: ("/api/jobs", {"parent": parents[i % len(parents)]})),
        ("list", "jobs ?type=&status=failed&since=7d",
         lambda i: ("/api/jobs",
                    {"type": bulkgen.TYPES[i % 8], "status": "failed", "since": "7d"})),
        ("detail", "job detail", lambda i: (f"/api/jobs/{job(i)}", {})),
        ("job logs", "job logs, first page", lambda i: (f"/api/jobs/{job(i)}/logs", {})),
        ("job logs", "job logs ?after_id=", lambda i: (f"/api/jobs/{job(i)}/logs", logs_after(i))),
        ("job logs", "job logs ?level=error,warn",
         lambda i: (f"/api/jobs/{job(i)}/logs", {"level": "error,warn"})),
        ("job logs", "job logs ?q= (one job)",
         lambda i: (f"/api/jobs/{job(i)}/logs", {"q": "batch 3 of"})),
        ("stats", "stats ?since=24h", lambda i: ("/api/stats", {"since": "24h"})),
        ("stats", "stats, everything", lambda i: ("/api/stats", {})),
        ("global logs", "logs, newest page", lambda i: ("/api/logs", {})),
        ("global logs", "logs ?level=error", lambda i: ("/api/logs", {"level": "error"})),
        ("global logs", "logs ?q= (common text)",
         lambda i: ("/api/logs", {"q": "connection reset"})),
        ("global logs", "logs ?q= (rare text)",
         lambda i: ("/api/logs", {"q": f"cursor={random.Random(i).getrandbits(32):08x}"})),
        ("global logs", "logs ?q=&since=24h",
         lambda i: ("/api/logs", {"q": "connection reset", "since": "24h"})),
    ]  # fmt: skip


def _time(server: u.Server, path: str, params: dict[str, Any]) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    try:
        body = server.get(path, timeout_s=120, **params)
        status, size = "200", len(body)
    except urllib.error.HTTPError as exc:
        status, size = str(exc.code), 0
    return (time.perf_counter() - t0) * 1000, size, status


def run(
    *,
    quick: bool = False,
    jobs: int | None = None,
    logs_per_job: int = 50,
    repeats: int | None = None,
) -> dict[str, Any]:
    """Generate (or reuse) the database, serve a copy, time every call."""
    jobs = jobs or (20_000 if quick else 100_000)
    repeats = repeats or (10 if quick else 30)
    source, gen = _cached_db(jobs, logs_per_job)
    workdir = Path(tempfile.mkdtemp(prefix="jobtrail-bench-query-"))
    db = workdir / "bulk.duckdb"
    shutil.copyfile(source, db)
    samples = _samples(db, max(repeats, 20))
    # Retention off: the bulk data is up to 30 days old and must stay as generated.
    server = u.Server(workdir, db, {"exporters": {"duckdb": {"retention": {"max_age": "3650d"}}}})
    server.start()
    results: list[dict[str, Any]] = []
    try:
        idle_after = server.wait_idle()
        u.log(f"query: server idle {idle_after:.1f} s after start")
        for group, name, make in _calls(samples):
            n = repeats if group not in ("stats", "global logs") else max(5, repeats // 3)
            for i in range(2):  # warm caches the way a used server has them
                _time(server, *make(1000 + i))
            times, sizes, statuses = [], [], set()
            for i in range(n):
                ms, size, status = _time(server, *make(i))
                times.append(ms)
                sizes.append(size)
                statuses.add(status)
            row = {
                "group": group,
                "call": name,
                "n": n,
                "p50_ms": u.percentile(times, 0.5),
                "p95_ms": u.percentile(times, 0.95),
                "max_ms": max(times),
                "bytes_median": sorted(sizes)[len(sizes) // 2],
                "statuses": sorted(statuses),
                "target_p95_ms": TARGETS.get(group),
            }
            row["meets_target"] = (
                None if row["target_p95_ms"] is None
                else row["p95_ms"] < row["target_p95_ms"] and row["statuses"] == ["200"]
            )  # fmt: skip
            results.append(row)
            u.log(f"  {name}: p50 {row['p50_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms {statuses}")
        peak = u.peak_rss_bytes(server.pid)
    finally:
        server.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    return {
        "config": {"jobs": jobs, "logs_per_job": logs_per_job, "repeats": repeats},
        "database": gen,
        "calls": results,
        "server_peak_rss_mib": peak / 2**20,
    }


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    """Table rows."""
    out = []
    g = result["database"]
    for r in result["calls"]:
        target = r["target_p95_ms"]
        verdict = (
            "" if target is None else (" ✓" if r["meets_target"] else f" ✗ (target {target:.0f})")
        )
        bad = "" if r["statuses"] == ["200"] else f" HTTP {','.join(r['statuses'])}"
        out.append(
            (f"query {r['group']}", r["call"],
             f"p50 {r['p50_ms']:.1f} / p95 {r['p95_ms']:.1f} ms{verdict}{bad}")
        )  # fmt: skip
    out.append(("query db", "bytes per span (bulk, checkpointed)", f"{g['bytes_per_span']:.0f}"))
    out.append(
        ("query db", "bytes per log record (bulk, checkpointed)", f"{g['bytes_per_log']:.0f}")
    )
    out.append(
        (
            "query db",
            "bytes per job / per step",
            f"{g['bytes_per_job']:.0f} / {g['bytes_per_step']:.0f}",
        )
    )
    return out
