"""A misbehaving OTLP/gRPC collector for agent fault tests.

Usage: fake_collector.py MODE PORT STATS_FILE

MODE is ``ok`` (answer at once), ``slow:SECONDS`` (answer after a delay), ``unavailable``
(refuse with UNAVAILABLE, as an overloaded collector does) or ``blackhole`` (accept TCP
connections and never answer a byte). PORT 0 picks a free port. The bound port is printed on
stdout once listening; STATS_FILE is rewritten after every request with
{"requests": n, "spans": n, "logs": n}.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from concurrent import futures

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb


def main() -> None:
    mode, port, stats_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "blackhole":
        blackhole(port)
        return
    delay_s = float(mode.split(":", 1)[1]) if mode.startswith("slow:") else 0.0
    lock = threading.Lock()
    stats = {"requests": 0, "spans": 0, "logs": 0}

    def record(spans: int, logs: int) -> None:
        with lock:
            stats["requests"] += 1
            stats["spans"] += spans
            stats["logs"] += logs
            tmp = f"{stats_file}.tmp"
            with open(tmp, "w") as f:
                json.dump(stats, f)
            os.replace(tmp, stats_file)

    def handler(kind: str):  # noqa: ANN202 - grpc handler factory
        def export(raw: bytes, context: grpc.ServicerContext) -> bytes:
            if mode == "unavailable":
                context.abort(grpc.StatusCode.UNAVAILABLE, "collector overloaded, retry later")
            time.sleep(delay_s)
            if kind == "traces":
                req = trace_pb.ExportTraceServiceRequest.FromString(raw)
                n = sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
                record(n, 0)
                return trace_pb.ExportTraceServiceResponse().SerializeToString()
            req = logs_pb.ExportLogsServiceRequest.FromString(raw)
            n = sum(len(sl.log_records) for rl in req.resource_logs for sl in rl.scope_logs)
            record(0, n)
            return logs_pb.ExportLogsServiceResponse().SerializeToString()

        return export

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    for kind, service in (
        ("traces", "opentelemetry.proto.collector.trace.v1.TraceService"),
        ("logs", "opentelemetry.proto.collector.logs.v1.LogsService"),
    ):
        method = grpc.unary_unary_rpc_method_handler(handler(kind))
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {"Export": method}),)
        )
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(bound, flush=True)
    server.wait_for_termination()


def blackhole(port: int) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    print(listener.getsockname()[1], flush=True)
    held = []
    while True:
        conn, _ = listener.accept()
        held.append(conn)  # never read, never answer, never close


if __name__ == "__main__":
    main()
