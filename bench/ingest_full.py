"""Ingest into a full database against an empty one: does jobtrail slow down as it fills?

Per repeat, the gRPC job-trace load of :mod:`bench.ingest` runs against a server on a
fresh file and against a server on a copy of the query benchmark's bulk database (100k
jobs by default, ``--jobs`` or ``--full`` for 1M jobs / 10M steps / 50M logs), pair by pair.
Retention is off so only ingest runs. The ratio full/empty of stored records/s is the
figure; server CPU seconds per 100k records show where the difference goes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench import _util as u
from bench import ingest, query

#: Retention off: the bulk data is up to 30 days old and must not be pruned meanwhile.
_CONFIG = {"exporters": {"duckdb": {"retention": {"max_age": "3650d"}}}}


def run(
    *, quick: bool = False, jobs: int | None = None, repeats: int | None = None
) -> dict[str, Any]:
    """Empty vs full, ``repeats`` pairs."""
    jobs = jobs or (20_000 if quick else 100_000)
    repeats = repeats or (1 if quick else 2)
    seconds = 12.0 if quick else 25.0
    bulk, gen = query._cached_db(jobs, 50)
    pairs: list[dict[str, Any]] = []
    for i in range(repeats):
        pair: dict[str, Any] = {}
        for label, base in (("empty", None), ("full", bulk)):
            u.log(f"ingest-full: repeat {i + 1}, {label} database, {seconds:.0f} s of gRPC load")
            with tempfile.TemporaryDirectory(prefix="jobtrail-bench-full-") as d:
                r = ingest.server_run(
                    Path(d),
                    transport="grpc",
                    workload="jobs",
                    generators=2,
                    concurrency=ingest.CONCURRENCY,
                    seconds=seconds,
                    start_from=base,
                    config=_CONFIG,
                )
            r.pop("rows", None)
            pair[label] = r
            u.log(
                f"  stored {r['stored_records_s']:,.0f} rec/s, "
                f"{r['server_cpu_s_per_100k']:.2f} CPU-s/100k, rss {r['peak_rss_mib']:.0f} MiB"
            )
        pair["ratio_stored"] = pair["full"]["stored_records_s"] / pair["empty"]["stored_records_s"]
        pair["ratio_cpu"] = (
            pair["full"]["server_cpu_s_per_100k"] / pair["empty"]["server_cpu_s_per_100k"]
        )
        pairs.append(pair)
    return {"jobs": jobs, "bulk": gen, "pairs": pairs}


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    """Table rows: rates and ratios, median (min–max) over the pairs."""
    pairs = result["pairs"]
    size = f"{result['jobs']:,} jobs"

    def fig(key: str, side: str | None = None, digits: int = 2) -> str:
        values = [p[side][key] if side else p[key] for p in pairs]
        return u.fmt_spread(u.spread(values), digits)

    return [
        ("ingest-full", "stored rec/s, empty file", fig("stored_records_s", "empty", 0)),
        ("ingest-full", f"stored rec/s, {size}", fig("stored_records_s", "full", 0)),
        ("ingest-full", f"stored rate, {size} / empty", fig("ratio_stored")),
        ("ingest-full", f"CPU-s per 100k, {size} / empty", fig("ratio_cpu")),
    ]
