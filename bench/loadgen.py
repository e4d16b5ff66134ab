"""A bounded OTLP load generator, run as its own process (``python -m bench.loadgen``).

It builds one workload unit (see :mod:`bench.workload`) at start, then until the deadline
sends fresh copies of it over gRPC or HTTP/protobuf from ``--concurrency`` concurrent
workers. Closed loop by default (each worker waits for its answer); with ``--rate`` it
offers that many records per second whatever the answers (for overload). Refused requests
(UNAVAILABLE / 503) are retried after a pause unless ``--no-retry``.

It prints one JSON line: requests, records acknowledged, refusals, errors, seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from bench.workload import Unit, build_span_unit, build_unit, fresh_marker

_TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_LOGS = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
_RETRY_PAUSE_S = 0.05

Send = Callable[[str, bytes], Awaitable[str]]  # (signal, body) -> "ok" | "refused" | error


async def _grpc_sender(endpoint: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import grpc

    channel = grpc.aio.insecure_channel(
        endpoint, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
    )
    methods = {
        "traces": channel.unary_unary(_TRACES),
        "logs": channel.unary_unary(_LOGS),
    }

    async def send(signal: str, body: bytes) -> str:
        try:
            await methods[signal](body, timeout=60)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
                return "refused"
            return exc.code().name
        return "ok"

    return send, channel.close


async def _http_sender(endpoint: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60)
    )
    headers = {"Content-Type": "application/x-protobuf"}
    urls = {"traces": f"{endpoint}/v1/traces", "logs": f"{endpoint}/v1/logs"}

    async def send(signal: str, body: bytes) -> str:
        try:
            async with session.post(urls[signal], data=body, headers=headers) as resp:
                await resp.read()
                if resp.status == 200:
                    return "ok"
                if resp.status in (429, 503):
                    return "refused"
                return f"http_{resp.status}"
        except (TimeoutError, aiohttp.ClientError) as exc:
            return type(exc).__name__

    return send, session.close


class _Bucket:
    """Token bucket in records per second (``rate <= 0``: unlimited)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next = time.monotonic()

    async def take(self, records: int) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        start = max(self._next, now)
        self._next = start + records / self.rate
        if start > now:
            await asyncio.sleep(start - now)


async def run(args: argparse.Namespace) -> dict[str, object]:
    """Send until the deadline; return the counts."""
    unit: Unit = (
        build_span_unit(args.spans_per_request, 1)
        if args.workload == "spans"
        else build_unit(args.jobs_per_unit)
    )
    make = _grpc_sender if args.transport == "grpc" else _http_sender
    send, close = await make(args.endpoint)
    counts: Counter[str] = Counter()
    acked = Counter[str]()
    bucket = _Bucket(args.rate)
    counter = 0
    start = time.monotonic()
    deadline = start + args.seconds
    per_request = {
        "traces": unit.spans // max(1, len(unit.traces)),
    }

    def records_of(signal: str, body: bytes, index: int) -> int:
        if signal == "traces":
            return per_request["traces"]
        full = unit.log_records // 512
        return 512 if index < full else unit.log_records - 512 * full

    async def send_one(signal: str, body: bytes, n: int) -> None:
        while True:
            await bucket.take(n)
            outcome = await send(signal, body)
            counts[outcome] += 1
            if outcome == "ok":
                acked[signal] += n
                return
            if outcome != "refused" or args.no_retry or time.monotonic() > deadline:
                return
            await asyncio.sleep(_RETRY_PAUSE_S)

    async def worker() -> None:
        nonlocal counter
        while time.monotonic() < deadline:
            counter += 1
            traces, logs = unit.patched(fresh_marker(args.generator, counter))
            for i, body in enumerate(logs):
                await send_one("logs", body, records_of("logs", body, i))
            for body in traces:
                await send_one("traces", body, records_of("traces", body, 0))

    async def open_loop() -> None:
        # Offer load at the bucket's rate, up to `concurrency` requests in flight.
        nonlocal counter
        slots = asyncio.Semaphore(args.concurrency)
        tasks: set[asyncio.Task[None]] = set()

        async def one(signal: str, body: bytes, n: int) -> None:
            try:
                outcome = await send(signal, body)
                counts[outcome] += 1
                if outcome == "ok":
                    acked[signal] += n
            finally:
                slots.release()

        while time.monotonic() < deadline:
            counter += 1
            traces, logs = unit.patched(fresh_marker(args.generator, counter))
            items = [("logs", b, records_of("logs", b, i)) for i, b in enumerate(logs)]
            items += [("traces", b, records_of("traces", b, 0)) for b in traces]
            for signal, body, n in items:
                await bucket.take(n)
                if time.monotonic() >= deadline:
                    break
                if slots.locked():
                    counts["skipped_in_flight_full"] += 1
                    continue
                await slots.acquire()
                task = asyncio.create_task(one(signal, body, n))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks)

    if args.rate > 0 and args.no_retry:
        await open_loop()
    else:
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed = time.monotonic() - start
    await close()
    return {
        "transport": args.transport,
        "seconds": elapsed,
        "outcomes": dict(counts),
        "acked_spans": acked["traces"],
        "acked_logs": acked["logs"],
        "unit_records": unit.records,
        "unit_bytes": unit.nbytes,
    }


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run, print the JSON result."""
    ap = argparse.ArgumentParser(prog="python -m bench.loadgen")
    ap.add_argument("--endpoint", required=True, help="host:port for grpc, URL for http")
    ap.add_argument("--transport", choices=("grpc", "http"), default="grpc")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rate", type=float, default=0.0, help="records/s offered (0 = closed loop)")
    ap.add_argument("--no-retry", action="store_true")
    ap.add_argument("--workload", choices=("jobs", "spans"), default="jobs")
    ap.add_argument("--jobs-per-unit", type=int, default=40)
    ap.add_argument("--spans-per-request", type=int, default=1000)
    ap.add_argument("--generator", type=int, default=0)
    args = ap.parse_args(argv)
    result = asyncio.run(run(args))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
