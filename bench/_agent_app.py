"""The application side of the agent benchmark, one variant per process.

Variants, each exporting over OTLP/gRPC to the same server:

* ``agent``: ``jobtrail.configure(endpoint=..., service_name=...)`` with every other
  option at its default; ``with jobtrail.job(...) as job: with job.step(...) as step:
  step.info(...)``.
* ``sdk``: the bare OpenTelemetry SDK with its defaults (``BatchSpanProcessor`` and
  ``BatchLogRecordProcessor`` around the OTLP gRPC exporters); the same job span, step
  spans and log lines with the same attributes, written by hand.
* ``sdk-sized``: the same bare-SDK code with the processors sized like the agent's
  (queue 100000, batch 512, delays 200/200 ms): the agent's API cost alone.

Modes: ``overhead`` runs ``--jobs`` jobs of 10 steps x 10 lines in a tight loop and times
each; ``burst`` logs at ``--rate`` lines/s for ``--seconds`` inside one job.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import json
import pstats
import sys
import time
from typing import Any

STEPS = 10
LINES_PER_STEP = 10


def _sdk(endpoint: str, service: str, sized: bool) -> tuple[Any, Any, Any, Any]:
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": service})
    tp = TracerProvider(resource=resource)
    lp = LoggerProvider(resource=resource)
    span_kw: dict[str, Any] = {}
    log_kw: dict[str, Any] = {}
    if sized:
        span_kw = {"max_queue_size": 100_000, "max_export_batch_size": 512,
                   "schedule_delay_millis": 200}  # fmt: skip
        log_kw = {"max_queue_size": 100_000, "max_export_batch_size": 512,
                  "schedule_delay_millis": 200}  # fmt: skip
    url = f"http://{endpoint}"
    tp.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=url, insecure=True), **span_kw)
    )
    lp.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=url, insecure=True), **log_kw)
    )
    return tp, lp, tp.get_tracer("bench-sdk"), lp.get_logger("bench-sdk")


def _sdk_job(tracer: Any, logger: Any, n: int, lines: int = LINES_PER_STEP) -> None:
    from opentelemetry import trace
    from opentelemetry._logs import SeverityNumber

    with tracer.start_as_current_span(
        f"import {n}",
        attributes={"job.type": "import", "job.name": f"import {n}", "job.owner": "ann",
                    "job.total_steps": STEPS, "job.attempt": 1},
    ) as job:  # fmt: skip
        job_id = format(job.get_span_context().span_id, "016x")
        job.set_attribute("job.id", job_id)
        for s in range(STEPS):
            name = f"step-{s}"
            with tracer.start_as_current_span(
                name, attributes={"job.step": name, "job.step.seq": s + 1, "job.id": job_id}
            ) as step:
                ctx = trace.set_span_in_context(step)
                for i in range(lines):
                    logger.emit(
                        timestamp=time.time_ns(),
                        context=ctx,
                        severity_number=SeverityNumber.INFO,
                        severity_text="INFO",
                        body=f"processed batch {i}",
                        attributes={"row": i, "table": "users", "job.id": job_id,
                                    "job.step": name},
                    )  # fmt: skip
                step.set_attribute("job.step.status", "completed")
        job.set_attribute("job.status", "completed")


def _agent_job(jobtrail: Any, n: int, lines: int = LINES_PER_STEP) -> None:
    with jobtrail.job(f"import {n}", type="import", owner="ann", total_steps=STEPS) as job:
        for s in range(STEPS):
            with job.step(f"step-{s}") as step:
                for i in range(lines):
                    step.info(f"processed batch {i}", row=i, table="users")


def _top(profiler: cProfile.Profile, n: int) -> list[tuple[str, float, float, int]]:
    """(function, own s, cumulative s, calls) for the top ``n`` by own time."""
    stats = pstats.Stats(profiler)
    rows = []
    for (file, line, name), (_, calls, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = file.split("site-packages/")[-1].split("/work/main/")[-1]
        rows.append((f"{name} ({where}:{line})", tt, ct, calls))
    rows.sort(key=lambda r: r[1], reverse=True)
    return rows[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", choices=("agent", "sdk", "sdk-sized"), required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--service", required=True)
    ap.add_argument("--mode", choices=("overhead", "burst"), default="overhead")
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--rate", type=float, default=10_000)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--profile", action="store_true", help="cProfile the job loop (top 20)")
    args = ap.parse_args()

    if args.variant == "agent":
        import jobtrail

        jobtrail.configure(endpoint=args.endpoint, service_name=args.service)

        def one_job(n: int) -> None:
            _agent_job(jobtrail, n)
    else:
        tp, lp, tracer, logger = _sdk(args.endpoint, args.service, args.variant == "sdk-sized")

        def one_job(n: int) -> None:
            _sdk_job(tracer, logger, n)

    out: dict[str, Any] = {"variant": args.variant}
    if args.mode == "overhead":
        for n in range(5):  # warm: imports, first exports, caches
            one_job(-n - 1)
        times = []
        profiler = cProfile.Profile() if args.profile else None
        cpu0, t0 = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        for n in range(args.jobs):
            t = time.perf_counter()
            one_job(n)
            times.append(time.perf_counter() - t)
        if profiler is not None:
            profiler.disable()
            out["profile"] = _top(profiler, 20)
        out["loop_s"] = time.perf_counter() - t0
        out["loop_cpu_s"] = time.process_time() - cpu0
        out["job_us"] = [t * 1e6 for t in times]
        out["jobs"] = args.jobs + 5
        out["lines"] = out["jobs"] * STEPS * LINES_PER_STEP
    else:
        emitted = 0
        period = 100 / args.rate  # emit in slices of 100 lines
        t0 = time.perf_counter()
        if args.variant == "agent":
            import jobtrail

            with jobtrail.job("burst", type="burst") as job:
                while time.perf_counter() - t0 < args.seconds:
                    for i in range(100):
                        job.info("burst line", i=i)
                    emitted += 100
                    wait = t0 + emitted / 100 * period - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
        else:
            from opentelemetry._logs import SeverityNumber

            with tracer.start_as_current_span("burst", attributes={"job.type": "burst"}):
                while time.perf_counter() - t0 < args.seconds:
                    for i in range(100):
                        logger.emit(
                            timestamp=time.time_ns(),
                            severity_number=SeverityNumber.INFO,
                            severity_text="INFO",
                            body="burst line",
                            attributes={"i": i},
                        )
                    emitted += 100
                    wait = t0 + emitted / 100 * period - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
        out["emitted_lines"] = emitted
        out["achieved_rate"] = emitted / (time.perf_counter() - t0)
    t = time.perf_counter()
    if args.variant == "agent":
        import jobtrail

        jobtrail.force_flush(60)
        out["agent_stats"] = dataclasses.asdict(jobtrail.agent_stats())
        jobtrail.shutdown()
    else:
        tp.force_flush(60_000)
        lp.force_flush(60_000)
        tp.shutdown()
        lp.shutdown()
    out["flush_s"] = time.perf_counter() - t
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
