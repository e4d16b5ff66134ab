"""Bounded OTLP/gRPC load: send prebuilt span requests for a while, record what was acked.

Usage: load_gen.py ENDPOINT SECONDS SPANS_PER_REQUEST OUT_JSON
Writes {"acked": [span ids hex...], "refused": n, "other_errors": {...}, "sent": n}.
"""

from __future__ import annotations

import json
import os
import sys
import time

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from otlp_build import new_span_id, new_trace_id, span, traces_request  # noqa: E402


def main() -> None:
    endpoint, seconds, per_request, out = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    stub = trace_grpc.TraceServiceStub(grpc.insecure_channel(endpoint))
    attrs = {f"attr.{i}": f"value-{i}" for i in range(8)}
    acked: list[str] = []
    refused = sent = 0
    errors: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        trace_id = new_trace_id()
        spans = [span(trace_id, new_span_id(), "load", attrs) for _ in range(per_request)]
        sent += 1
        try:
            stub.Export(traces_request(spans), timeout=30)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            if code == grpc.StatusCode.UNAVAILABLE:
                refused += 1
                time.sleep(0.01)
            else:
                errors[code.name] = errors.get(code.name, 0) + 1
            continue
        acked.extend(s.span_id.hex() for s in spans)
    with open(out, "w") as f:
        json.dump({"acked": acked, "refused": refused, "sent": sent, "other_errors": errors}, f)


if __name__ == "__main__":
    main()
