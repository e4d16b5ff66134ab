"""OTLP requests to table rows: the C column decoders against the Python reference ones.

``python -m bench.decoders`` decodes the ingest workload's requests (:mod:`bench.workload`:
log requests of 512 records, lifecycle records included; trace requests of job and step
spans) in one process, alternating the two decoders repeat by repeat, and prints µs per
record with the ratio taken pair by pair. Both include parsing the body with protobuf,
which every request gets first in the server, and the Python that turns lifecycle records
and job/step spans into job and step updates.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.workload import build_unit
from jobtrail.collector import log_columns, span_columns
from jobtrail.collector.decode import (
    decode_logs,
    decode_logs_per_record,
    decode_traces,
    decode_traces_per_span,
)

Decode = Callable[[bytes], object]

#: Per signal: (what a record is, the Python decoder, the column decoder).
SIGNALS: dict[str, tuple[str, Decode, Decode]] = {
    "logs": (
        "log record",
        lambda body: decode_logs_per_record(ExportLogsServiceRequest.FromString(body)),
        lambda body: decode_logs(ExportLogsServiceRequest.FromString(body), body),
    ),
    "spans": (
        "span",
        lambda body: decode_traces_per_span(ExportTraceServiceRequest.FromString(body)),
        lambda body: decode_traces(ExportTraceServiceRequest.FromString(body), body),
    ),
}


def _per_record_us(bodies: list[bytes], records: int, decode: Decode) -> float:
    started = time.process_time()
    for body in bodies:
        decode(body)
    return (time.process_time() - started) / records * 1e6


def compare(bodies: list[bytes], records: int, python: Decode, columns: Decode, repeats: int
            ) -> dict[str, list[float]]:  # fmt: skip
    """µs per record of each decoder, ``repeats`` times, alternating."""
    times: dict[str, list[float]] = {"python": [], "columns": []}
    for _ in range(repeats):
        times["python"].append(_per_record_us(bodies, records, python))
        times["columns"].append(_per_record_us(bodies, records, columns))
    return times


def main() -> None:
    """Print µs per record for each decoder and their ratio (median, min–max), per signal."""
    ap = argparse.ArgumentParser(prog="python -m bench.decoders")
    ap.add_argument("--jobs", type=int, default=40, help="jobs per workload unit")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--signal", choices=[*SIGNALS, "all"], default="all")
    args = ap.parse_args()
    if not (log_columns.AVAILABLE and span_columns.AVAILABLE):
        raise SystemExit("the C decoders are not built (pip install -e . with a C compiler)")
    unit = build_unit(args.jobs)
    work = {"logs": (unit.logs, unit.log_records), "spans": (unit.traces, unit.spans)}
    for signal in SIGNALS if args.signal == "all" else [args.signal]:
        what, python, columns = SIGNALS[signal]
        bodies, records = work[signal]
        times = compare(bodies, records, python, columns, args.repeats)
        ratios = [p / c for p, c in zip(times["python"], times["columns"], strict=True)]
        print(f"{records} {what}s in {len(bodies)} requests, {args.repeats} repeats")
        for name, label in (("python", f"per {what} (Python)"), ("columns", "column-wise (C)")):
            t = times[name]
            print(f"  {label:22} {statistics.median(t):6.2f} µs/{what} ({min(t):.2f}–{max(t):.2f})")
        print(
            f"  {'Python / C':22} {statistics.median(ratios):6.2f}x "
            f"({min(ratios):.2f}–{max(ratios):.2f})"
        )


if __name__ == "__main__":
    main()
