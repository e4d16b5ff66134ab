"""Lake: ingest with one and two collectors on a DuckLake, and query latency lake vs file.

``python -m bench lake`` starts a throwaway PostgreSQL (the catalog; Debian's ``postgresql``
binaries, as the tests use) and measures, on the same machine state:

* **ingest** — the ``jobs`` workload of :mod:`bench.ingest` (2 closed-loop generators x 4
  concurrent requests over gRPC) into (a) one server on a DuckDB file, (b) one collector on a
  fresh lake, (c) two collectors on a fresh lake with one generator each. Per run: stored
  records/s (all collectors), collector CPU cores and records per collector CPU-second (the
  figure that scales with cores), and the catalog's load: PostgreSQL transactions/s and the
  CPU of its backends. Afterwards the rows are counted through the lake and checked against
  what the generators saw acknowledged.
* **queries** — the bulk database of :mod:`bench.query` (``--jobs``; 20k jobs by default
  here) loaded into a lake as facts and raw records (log ids kept), then a selection of the
  API calls timed against a server on the file, one on the lake with every fact folded when
  read (``lake_before``: stored folds off, as before :mod:`jobtrail.storage._lake_fold`),
  and one on the same lake after a fold pass stored the folded jobs and steps (``lake``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb

from bench import _util as u
from bench import query
from bench.ingest import _generators, _reap

_PG_HELPER = Path(__file__).parent.parent / "tests" / "lake" / "pg.py"
QUERY_CALLS = (
    "GET /healthz", "jobs, no filter", "jobs ?status=failed", "jobs ?type=&status=failed&since=7d",
    "job detail", "job logs, first page", "job logs ?after_id=", "stats ?since=24h",
    "stats, everything", "logs, newest page", "logs ?level=error",
)  # fmt: skip
#: The three query runs: name, lake or file, stored folds on.
QUERY_RUNS = (("file", False, True), ("lake_before", True, False), ("lake", True, True))


def _pg() -> ModuleType:
    """The throwaway-cluster helper the lake tests use (one copy of that code)."""
    spec = importlib.util.spec_from_file_location("jobtrail_bench_pg", _PG_HELPER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lake_config(catalog: str, data: Path) -> dict[str, Any]:
    lake = {"catalog": catalog, "data_path": str(data), "commit_interval": "500ms"}
    return {"exporters": {"duckdb": {"lake": lake}}}


def _psql(cluster: Any, dbname: str, sql: str) -> str:
    done = subprocess.run(
        [str(cluster.bin / "psql"), "-h", str(cluster.dir), "-p", str(cluster.port),
         "-U", cluster.user, "-d", dbname, "-Atc", sql],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def _catalog_counters(cluster: Any, dbname: str) -> tuple[int, float]:
    """(committed + rolled back transactions, CPU seconds of the cluster's live processes)."""
    xacts = int(
        _psql(
            cluster,
            dbname,
            f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{dbname}'",
        )  # fmt: skip
    )
    master = int((cluster.dir / "data" / "postmaster.pid").read_text().split()[0])
    cpu = u.cpu_seconds(master)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == master:
                cpu += u.cpu_seconds(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return xacts, cpu


def _count_lake(catalog: str, data: Path) -> dict[str, int]:
    from jobtrail.storage.lake import LakeConfig, LakeDatabase

    db = LakeDatabase(LakeConfig(catalog=catalog, data_path=str(data)))
    try:
        cur = db.cursor()
        return {
            t: int(cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]  # noqa: S608
            for t in ("spans", "logs", "jobs", "steps")
        }
    finally:
        db.close()


def ingest_run(workdir: Path, cluster: Any, *, collectors: int, seconds: float) -> dict[str, Any]:
    """``collectors`` servers (0: one on a file) under the jobs workload; steady-window figures."""
    dbname = cluster.create_database("bench")
    catalog = f"postgres:{cluster.conninfo(dbname)}"
    data = workdir / f"lake-{dbname}"
    servers = []
    for i in range(max(1, collectors)):
        config = _lake_config(catalog, data) if collectors else {}
        servers.append(u.Server(workdir / f"{dbname}-{i}", workdir / f"{dbname}.duckdb", config))
    for server in servers:
        server.start()
    skip = min(3.0, seconds * 0.2)
    window = seconds - 2 * skip
    try:
        per = 2 // len(servers)
        procs = [
            p for k, s in enumerate(servers)
            for p in _generators(s, "grpc", per, seconds, 4, "jobs", first_id=k * per)
        ]  # fmt: skip
        time.sleep(skip)
        stored0 = sum(s.stored() for s in servers)
        cpu0 = sum(u.cpu_seconds(s.pid) for s in servers)
        x0, pg0 = _catalog_counters(cluster, dbname)
        t0 = time.monotonic()
        time.sleep(window)
        stored1 = sum(s.stored() for s in servers)
        cpu1 = sum(u.cpu_seconds(s.pid) for s in servers)
        x1, pg1 = _catalog_counters(cluster, dbname)
        t1 = time.monotonic()
        results, _ = _reap(procs)
    finally:
        for server in servers:
            server.stop()
    wall = t1 - t0
    acked = sum(int(r.get("acked_spans", 0)) + int(r.get("acked_logs", 0)) for r in results)
    if collectors:
        rows = _count_lake(catalog, data)
        files = sum(1 for _ in data.rglob("*.parquet"))
    else:
        con = duckdb.connect(str(servers[0].db), read_only=True)
        rows = {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]  # noqa: S608
                for t in ("spans", "logs", "jobs", "steps")}  # fmt: skip
        con.close()
        files = 1
    stored, cpu = stored1 - stored0, cpu1 - cpu0
    return {
        "storage": "file" if not collectors else f"lake, {collectors} collector(s)",
        "collectors": collectors,
        "window_s": wall,
        "stored_records_s": stored / wall,
        "collector_cpu_cores": cpu / wall,
        "records_per_collector_cpu_s": stored / max(cpu, 1e-9),
        "catalog_xacts_s": (x1 - x0) / wall if collectors else 0.0,
        "catalog_cpu_cores": (pg1 - pg0) / wall if collectors else 0.0,
        "rows": rows,
        "acked_records": acked,
        "rows_match_acked": rows["spans"] + rows["logs"] == acked,
        "parquet_files": files,
    }


def load_lake(source: Path, catalog: str, data: Path) -> float:
    """Copy a bulk file into a new lake: raw records as they are, jobs and steps as facts."""
    from jobtrail.storage._lake_ext import load_extension
    from jobtrail.storage.lake import LakeConfig, LakeDatabase

    t0 = time.perf_counter()
    LakeDatabase(LakeConfig(catalog=catalog, data_path=str(data))).close()  # the layout
    con = duckdb.connect(config={"autoload_known_extensions": False})
    try:
        for name in ("ducklake", "postgres"):
            load_extension(con, name)
        con.execute(f"ATTACH 'ducklake:{catalog}' AS lake (DATA_PATH '{data.resolve()}/')")
        con.execute(f"ATTACH '{source}' AS f (READ_ONLY)")
        con.execute("BEGIN TRANSACTION")
        con.execute("INSERT INTO lake.spans BY NAME SELECT * FROM f.spans")
        # Log ids are row ids on a lake: insert in id order after the marker row (id 0).
        con.execute(
            "INSERT INTO lake.log_records BY NAME SELECT * EXCLUDE (id) FROM f.logs ORDER BY id"
        )
        for fact, table, order in (
            ("job_facts", "jobs", "last_seen"),
            ("step_facts", "steps", "coalesce(ended_at, started_at)"),
        ):
            want = {r[0] for r in con.execute(f"DESCRIBE lake.{fact}").fetchall()}
            have = [r[0] for r in con.execute(f"DESCRIBE f.{table}").fetchall()]
            columns = ", ".join(c for c in have if c in want)
            con.execute(
                f"INSERT INTO lake.{fact} BY NAME SELECT {columns}, "  # noqa: S608
                "CASE WHEN span_received THEN 1 ELSE 0 END::TINYINT AS tier, "
                f"{order} AS ranked_at, {order} AS seen_at, {order} AS received_at FROM f.{table}"
            )
        con.execute("COMMIT")
    finally:
        con.close()
    return time.perf_counter() - t0


def fold_lake(catalog: str, data: Path) -> float:
    """One fold pass over the loaded lake (what a collector's first pass does); seconds."""
    from jobtrail.storage._lake_fold import fold_settled
    from jobtrail.storage.lake import LakeConfig, LakeDatabase

    db = LakeDatabase(LakeConfig(catalog=catalog, data_path=str(data)))
    try:
        t0 = time.perf_counter()
        fold_settled(db.cursor(), db.lake.name)
        return time.perf_counter() - t0
    finally:
        db.close()


def query_runs(workdir: Path, cluster: Any, *, jobs: int, repeats: int) -> dict[str, Any]:
    """The same API calls against a server on the bulk file and on the same data as a lake,
    with every fact folded when read (before) and with the folds stored (after)."""
    source, gen = query._cached_db(jobs, 50)
    db = workdir / "bulk.duckdb"
    shutil.copyfile(source, db)
    samples = query._samples(db, max(repeats, 20))
    catalog = f"postgres:{cluster.conninfo(cluster.create_database('bulk'))}"
    data = workdir / "bulk-lake"
    u.log(f"lake: loading {jobs:,} jobs into a lake")
    load_s = load_lake(db, catalog, data)
    calls = [c for c in query._calls(samples) if c[1] in QUERY_CALLS]
    out: dict[str, list[dict[str, Any]]] = {}
    fold_s = 0.0
    for storage, on_lake, folds in QUERY_RUNS:
        config = _lake_config(catalog, data) if on_lake else {}
        if on_lake and folds:
            fold_s = fold_lake(catalog, data)
            u.log(f"lake: fold pass over {jobs:,} jobs: {fold_s:.1f} s")
        # The "before" server must not store folds itself (its first pass runs after 1 s).
        os.environ["JOBTRAIL_LAKE_FOLD_INTERVAL_S"] = "0" if on_lake and not folds else "30"
        try:
            server = u.Server(workdir / f"q-{storage}", db, config).start()
        finally:
            os.environ.pop("JOBTRAIL_LAKE_FOLD_INTERVAL_S", None)
        try:
            server.wait_idle()
            rows = []
            for _group, name, make in calls:
                for i in range(2):
                    query._time(server, *make(1000 + i))
                times = [query._time(server, *make(i))[0] for i in range(repeats)]
                rows.append({"call": name, "p50_ms": u.percentile(times, 0.5),
                             "p95_ms": u.percentile(times, 0.95)})  # fmt: skip
                u.log(f"  {storage}: {name}: p50 {rows[-1]['p50_ms']:.1f} ms")
            out[storage] = rows
        finally:
            server.stop()
    return {"jobs": jobs, "database": gen, "lake_load_s": load_s, "fold_s": fold_s, "calls": out}


def run(
    *, quick: bool = False, jobs: int | None = None, repeats: int | None = None
) -> dict[str, Any]:
    """Everything above; returns the JSON-ready result."""
    pg = _pg()
    reason = pg.unavailable_reason()
    if reason:
        raise SystemExit(f"bench lake: {reason}")
    seconds = 8.0 if quick else 15.0
    workdir = Path(tempfile.mkdtemp(prefix="jobtrail-bench-lake-"))
    cluster = pg.PostgresCluster()
    cluster.start()
    try:
        ingest = []
        for collectors in (0, 1, 2):
            u.log(f"lake: ingest, {collectors or 'file'} collector(s), {seconds:.0f} s")
            res = ingest_run(workdir, cluster, collectors=collectors, seconds=seconds)
            u.log(f"  {_summary(res)}")
            ingest.append(res)
        queries = query_runs(
            workdir, cluster, jobs=jobs or (5_000 if quick else 20_000), repeats=repeats or 10
        )
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {"seconds_per_run": seconds, "ingest": ingest, "queries": queries}


def _summary(r: dict[str, Any]) -> str:
    return (
        f"{r['stored_records_s']:,.0f} rec/s; {r['records_per_collector_cpu_s']:,.0f} rec per "
        f"collector CPU-s; catalog {r['catalog_xacts_s']:.0f} xact/s, "
        f"{r['catalog_cpu_cores']:.2f} cores; rows ok {r['rows_match_acked']}"
    )


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    """Table rows."""
    out: list[tuple[str, ...]] = []
    for r in result["ingest"]:
        out.append(("lake ingest", r["storage"], _summary(r)))
    q = result["queries"]
    lake = {r["call"]: r for r in q["calls"]["lake"]}
    before = {r["call"]: r for r in q["calls"].get("lake_before", [])}
    for r in q["calls"]["file"]:
        other = lake[r["call"]]
        text = (f"file {r['p50_ms']:.1f} / {r['p95_ms']:.1f} ms; "
                f"lake {other['p50_ms']:.1f} / {other['p95_ms']:.1f} ms")  # fmt: skip
        if r["call"] in before:
            old = before[r["call"]]
            text += (f"; lake before {old['p50_ms']:.1f} / {old['p95_ms']:.1f} ms "
                     f"(p50 {old['p50_ms'] / max(other['p50_ms'], 1e-9):.1f}x)")  # fmt: skip
        out.append((f"lake query ({q['jobs']:,} jobs)", r["call"], text))
    return out
