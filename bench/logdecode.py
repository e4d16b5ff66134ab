"""Log requests to ``logs`` rows: the C column decoder against the per-record Python one.

``python -m bench.logdecode`` decodes the ingest workload's log requests (:mod:`bench.workload`,
512 records each, lifecycle records included) in one process, alternating the two decoders
repeat by repeat, and prints µs per record with the ratio taken pair by pair. Both include
parsing the body with protobuf, which every request gets first in the server; the column
path also includes the Python it still does per lifecycle record (the job and step updates).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from bench.workload import build_unit
from jobtrail.collector.decode import decode_logs, decode_logs_per_record
from jobtrail.collector.log_columns import AVAILABLE


def _per_record_us(bodies: list[bytes], records: int, decode: Callable[[bytes], object]) -> float:
    started = time.process_time()
    for body in bodies:
        decode(body)
    return (time.process_time() - started) / records * 1e6


def main() -> None:
    """Print µs per log record for each decoder and their ratio (median, min–max)."""
    ap = argparse.ArgumentParser(prog="python -m bench.logdecode")
    ap.add_argument("--jobs", type=int, default=40, help="jobs per workload unit")
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    if not AVAILABLE:
        raise SystemExit("the C log decoder is not built (pip install -e . with a C compiler)")
    unit = build_unit(args.jobs)

    def python(body: bytes) -> object:
        return decode_logs_per_record(ExportLogsServiceRequest.FromString(body))

    def columns(body: bytes) -> object:
        return decode_logs(ExportLogsServiceRequest.FromString(body), body)

    times: dict[str, list[float]] = {"python": [], "columns": []}
    for _ in range(args.repeats):
        for name, decode in (("python", python), ("columns", columns)):
            times[name].append(_per_record_us(unit.logs, unit.log_records, decode))
    ratios = [p / c for p, c in zip(times["python"], times["columns"], strict=True)]
    print(f"{unit.log_records} log records in {len(unit.logs)} requests, {args.repeats} repeats")
    for name, label in (("python", "per record (Python)"), ("columns", "column-wise (C)")):
        t = times[name]
        print(f"{label:20} {statistics.median(t):6.2f} µs/record ({min(t):.2f}–{max(t):.2f})")
    print(
        f"{'Python / C':20} {statistics.median(ratios):6.2f}x ({min(ratios):.2f}–{max(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
