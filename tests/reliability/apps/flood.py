"""Many concurrent OTLP/gRPC span requests, each acknowledged one recorded at once.

Usage: flood.py ENDPOINT OUT_JSONL SECONDS THREADS SPANS_PER_REQUEST

Every span is a job (``job.type``), so each commit also updates ``jobs``. THREADS threads
each send requests back to back (so up to THREADS are in the server's queue
at once) for SECONDS, or until the server stops answering. Every acknowledged request appends
its span ids as one JSON line to OUT_JSONL (flushed). Prints a JSON summary at the end:
{"acked": requests, "errors": {code: n}}.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from otlp_build import new_span_id, new_trace_id, span, traces_request  # noqa: E402

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
ATTRS = {f"flood.attr.{i}": "x" * 40 for i in range(12)}


def main() -> None:
    endpoint, out_path = sys.argv[1], sys.argv[2]
    seconds, threads, per_request = float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    channel = grpc.insecure_channel(endpoint)
    export = channel.unary_unary(METHOD)
    lock = threading.Lock()
    errors: dict[str, int] = {}
    acked = [0]
    deadline = time.monotonic() + seconds
    out = open(out_path, "a")  # noqa: SIM115 - closed below, after every thread ended

    def worker() -> None:
        while time.monotonic() < deadline:
            trace_id = new_trace_id()
            spans = [
                span(trace_id, new_span_id(), "flood", {**ATTRS, "job.type": "flood"})
                for _ in range(per_request)
            ]
            try:
                export(traces_request(spans, "flood").SerializeToString(), timeout=60)
            except grpc.RpcError as exc:
                with lock:
                    name = exc.code().name  # type: ignore[attr-defined]
                    errors[name] = errors.get(name, 0) + 1
                if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:  # type: ignore[attr-defined]
                    continue
                return  # the server is stopping or gone: this thread is done
            with lock:
                out.write(json.dumps([s.span_id.hex() for s in spans]) + "\n")
                out.flush()
                acked[0] += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.close()
    print(json.dumps({"acked": acked[0], "errors": errors}), flush=True)


if __name__ == "__main__":
    main()
