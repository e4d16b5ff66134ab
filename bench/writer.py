"""The writer alone: CPU per stored record, against a floor, with DuckDB on 1 and 2 threads.

Where does the ingest CPU go once a request is decoded? Each run decodes the ingest
workload's requests (``--units`` units of 40 jobs, :mod:`bench.workload`) up front, then
feeds the batches to a :class:`~jobtrail.storage.writer.BatchWriter` on a fresh file, eight
writes in flight by default (as concurrent Export calls would), and counts the process's CPU seconds
while they are stored. Variants:

* ``writer``: the production writer (spans, logs, jobs and steps linked, log counts and
  ranges, retry digests), exactly as ``jobtrail serve`` runs it;
* ``floor``: the same batches with only the raw ``spans`` and ``logs`` rows inserted and
  committed in the same groups: what DuckDB itself costs, no linking at all;
* ``duckdb``: the raw rows of ``in_flight`` requests per commit, straight on the
  connection, without the writer's loop: DuckDB's insert and commit and nothing else.

Each (variant, threads) runs in its own interpreter, alternating, ``--repeats`` times. The
decode cost per record of the same process is printed beside it for scale.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import _util as u

VARIANTS = (("writer", 2), ("writer", 1), ("floor", 2), ("floor", 1), ("duckdb", 1))


def _child(variant: str, threads: int, units: int, in_flight: int = 8) -> dict[str, Any]:
    import pyarrow as pa
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from bench.workload import build_unit, fresh_marker
    from jobtrail.collector import decode_logs, decode_traces
    from jobtrail.config import ServerConfig
    from jobtrail.storage import Database
    from jobtrail.storage import writer as w
    from jobtrail.storage.model import Batch, one_table

    unit = build_unit(40)
    requests: list[list[Batch]] = []
    cpu0 = time.process_time()
    for i in range(units):
        traces, logs = unit.patched(fresh_marker(0xBEEF, i))
        batches = []
        for body in logs:
            req = ExportLogsServiceRequest()
            req.ParseFromString(body)
            batches.append(decode_logs(req).batch)
        for body in traces:
            req_t = ExportTraceServiceRequest()
            req_t.ParseFromString(body)
            batches.append(decode_traces(req_t).batch)
        requests.append(batches)
    decode_cpu = time.process_time() - cpu0

    next_id = 1

    def raw_commit(con: Any, batches: list[Batch]) -> None:
        """Only the raw rows of ``batches``, in one transaction."""
        nonlocal next_id
        con.execute("BEGIN TRANSACTION")
        spans = one_table([b.spans for b in batches])
        if spans is not None:
            con.register("_floor_spans", spans)
            con.execute("INSERT INTO spans BY NAME SELECT * FROM _floor_spans")
            con.unregister("_floor_spans")
        logs = one_table([b.logs for b in batches])
        if logs is not None:
            ids = pa.array(range(next_id, next_id + logs.num_rows), pa.int64())
            next_id += logs.num_rows
            con.register("_floor_logs", logs.append_column("id", ids))
            con.execute("INSERT INTO logs BY NAME SELECT * FROM _floor_logs")
            con.unregister("_floor_logs")
        con.execute("COMMIT")

    class FloorWriter(w.BatchWriter):
        """Raw rows only: the part of a commit no linking design can avoid."""

        def _store(self, batches: list[Batch]) -> w.CommitInfo:
            raw_commit(self._con, batches)
            self.commits += 1
            return w.CommitInfo()

    def duckdb_alone(db: Database) -> int:
        """``in_flight`` requests' raw rows per commit, straight on the connection."""
        flat = [batch for batches in requests for batch in batches]
        for i in range(0, len(flat), in_flight):
            raw_commit(db.con, flat[i : i + in_flight])
        return -(-len(flat) // in_flight)

    async def through_writer(db: Database) -> int:
        writer = (FloorWriter if variant == "floor" else w.BatchWriter)(db)
        writer.start()
        gate = asyncio.Semaphore(in_flight)

        async def send(batches: list[Batch]) -> None:
            async with gate:
                for batch in batches:
                    await writer.write(batch)

        await asyncio.gather(*(send(b) for b in requests))
        await asyncio.to_thread(writer.close)
        return writer.commits

    async def store() -> dict[str, Any]:
        workdir = Path(tempfile.mkdtemp(prefix="jobtrail-bench-writer-"))
        # The server's own checkpoint threshold (from the default memory limiter).
        db = Database(
            workdir / "w.duckdb",
            threads=threads,
            checkpoint_bytes=ServerConfig().checkpoint_bytes(),
        )
        cpu0, t0 = time.process_time(), time.perf_counter()
        commits = duckdb_alone(db) if variant == "duckdb" else await through_writer(db)
        wall = time.perf_counter() - t0
        # The checkpoint still owed counts too: a larger threshold must not look cheaper
        # only because it leaves more of the work for after the run.
        db.con.execute("CHECKPOINT")
        cpu = time.process_time() - cpu0
        stored = db.con.execute(
            "SELECT (SELECT count(*) FROM spans) + (SELECT count(*) FROM logs)"
        ).fetchone()
        db.close()
        shutil.rmtree(workdir, ignore_errors=True)
        records = units * unit.records
        return {
            "variant": variant,
            "threads": threads,
            "records": records,
            "stored": int(stored[0]) if stored else 0,
            "commits": commits,
            "records_per_cpu_s": records / cpu,
            "us_per_record": cpu / records * 1e6,
            "records_per_s": records / wall,
            "decode_us_per_record": decode_cpu / records * 1e6,
        }

    return asyncio.run(store())


def one(variant: str, threads: int, units: int, in_flight: int = 8) -> dict[str, Any]:
    """One variant in a fresh interpreter (its imports and caches do not carry over)."""
    argv = [variant, str(threads), str(units), str(in_flight)]
    out = subprocess.run(
        [sys.executable, "-m", "bench.writer", *argv],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(
    *, quick: bool = False, repeats: int | None = None, units: int | None = None
) -> dict[str, Any]:
    """Every variant ``repeats`` times, alternating; each in a fresh interpreter."""
    repeats = repeats or (1 if quick else 3)
    units = units or (10 if quick else 40)
    runs: list[dict[str, Any]] = []
    for r in range(repeats):
        for variant, threads in VARIANTS:
            u.log(f"writer: {variant}, DuckDB threads={threads}, repeat {r + 1}")
            res = one(variant, threads, units)
            res["repeat"] = r
            runs.append(res)
            u.log(
                f"  {res['records_per_cpu_s']:,.0f} records per CPU-s "
                f"({res['us_per_record']:.1f} µs), decode {res['decode_us_per_record']:.1f} µs"
            )
    summary: dict[str, Any] = {}
    for variant, threads in VARIANTS:
        sel = [x for x in runs if x["variant"] == variant and x["threads"] == threads]
        summary[f"{variant}_t{threads}"] = {
            k: u.spread([x[k] for x in sel])
            for k in ("records_per_cpu_s", "us_per_record", "records_per_s", "decode_us_per_record")
        }
    return {"config": {"units": units, "repeats": repeats}, "runs": runs, "summary": summary}


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    """Table rows for the summary."""
    out: list[tuple[str, ...]] = []
    names = {
        "writer": "writer (production)",
        "floor": "floor (raw rows only)",
        "duckdb": "DuckDB alone (raw rows, no writer loop)",
    }
    for variant, threads in VARIANTS:
        s = result["summary"][f"{variant}_t{threads}"]
        label = f"writer, {names[variant]}, DuckDB threads={threads}"
        out.append((label, "records per CPU-s", u.fmt_spread(s["records_per_cpu_s"], 0)))
        out.append((label, "CPU µs per record", u.fmt_spread(s["us_per_record"], 1)))
    decode = result["summary"]["writer_t1"]["decode_us_per_record"]
    out.append(("writer", "decode CPU µs per record (same runs)", u.fmt_spread(decode, 1)))
    return out


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], *map(int, sys.argv[2:]))))
