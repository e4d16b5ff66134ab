"""``jobtrail serve``: collector, writer and API in one process on one DuckDB file.

Start order is database -> writer -> API -> receivers, and shutdown is the reverse, so that
nothing is accepted that cannot be stored and everything accepted is committed before the
file is closed. SIGTERM/SIGINT stop it gracefully; a second signal exits at once (DuckDB's
write-ahead log keeps the file consistent either way).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from jobtrail.auth import TokenAuth, server_ssl_context
from jobtrail.collector import (
    Ingestor,
    MemoryLimiter,
    OtlpGrpcReceiver,
    ReceiverStats,
    create_receiver_app,
)
from jobtrail.collector.http_receiver import receiver_runner
from jobtrail.collector.log_columns import AVAILABLE as log_columns_available
from jobtrail.collector.span_columns import AVAILABLE as span_columns_available
from jobtrail.config import ServerConfig
from jobtrail.selfmetrics import metrics_handler
from jobtrail.storage import Database, DatabaseError
from jobtrail.storage.maintenance import forget_old_requests, mark_lost
from jobtrail.storage.retention import RetentionStats, cursor_reader, run_periodically
from jobtrail.storage.writer import BatchWriter, WriterClosed

if TYPE_CHECKING:
    from jobtrail.storage.lake import LakeStorage

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Endpoints:
    """Where a running server listens (ports resolved when 0 was asked for)."""

    grpc: str
    http: str
    api: str

    def as_dict(self) -> dict[str, str]:
        """JSON-ready form, written to ``--ready-file``."""
        return {"grpc": self.grpc, "http": self.http, "api": self.api}


#: Full (generation 2) collections only after this many generation-1 collections (Python's
#: default: 10).
_GC_FULL_EVERY = 100


def _settle_gc() -> None:
    """Keep the cyclic collector off the objects that live as long as the server.

    Under load the collector took 1.45 µs of CPU per stored record, most of it in full
    collections re-walking everything loaded at start (modules, functions, types) and the
    linker's caches. Freezing what exists once serving starts and running full collections
    a tenth as often cut it to 0.7 µs. The young generations keep Python's thresholds:
    garbage cycles (a refused request's traceback holding its body) are freed as soon as
    before, which bounds memory under overload.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _GC_FULL_EVERY)


async def _start_site(
    app: web.Application,
    host: str,
    port: int,
    tls: tuple[str, str] | None = None,
    make_runner: Callable[..., web.AppRunner] = web.AppRunner,
) -> tuple[web.AppRunner, int]:
    runner = make_runner(app, access_log=None)
    await runner.setup()
    ssl_context = server_ssl_context(*tls) if tls else None
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    server = site._server  # noqa: SLF001 - aiohttp exposes no public accessor for the bound port
    sockets = getattr(server, "sockets", None)  # an asyncio.Server once started
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)


_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def _warn_if_exposed(cfg: ServerConfig) -> None:
    for name, host, auth in (
        ("OTLP/gRPC", cfg.grpc_host, cfg.grpc_auth),
        ("OTLP/HTTP", cfg.http_host, cfg.http_auth),
        ("API", cfg.api_host, cfg.api_auth),
    ):
        if host not in _LOOPBACK and not auth:
            log.warning(
                "%s listens on %s without authentication: anyone who can reach it can %s",
                name,
                host,
                "read your job history" if name == "API" else "send data",
            )


def api_auth_middleware(tokens: TokenAuth) -> Any:
    """Require a bearer token on every API route; health checks and the page's static files
    (which hold no data — the page asks for the token) stay open."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        public = request.path in ("/", "/healthz", "/readyz") or request.path.startswith("/static/")
        if public or tokens.allows(request.headers.get("Authorization")):
            return await handler(request)
        return web.json_response(
            {"error": {"code": "unauthenticated", "message": "missing or invalid bearer token"}},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    return middleware


async def sweep_lost(
    writer: BatchWriter, lost_after_s: float, on_lost: Callable[[set[str]], None]
) -> None:
    """Mark jobs whose heartbeats stopped as lost, forever (cancel to stop)."""
    interval = max(0.5, min(lost_after_s / 4, 15.0))
    next_forget = 0.0
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        if loop.time() >= next_forget:
            next_forget = loop.time() + 3600
            try:
                await writer.run(forget_old_requests, changed_jobs=lambda _: ())
            except WriterClosed:
                return
        try:
            lost = await writer.run(
                lambda con: mark_lost(con, lost_after_s), changed_jobs=lambda ids: ids
            )
        except WriterClosed:
            return
        except Exception:
            log.exception("marking lost jobs failed")
            continue
        if lost:
            on_lost(set(lost))
            log.info("%d job(s) lost (no sign of life for %.0f s)", len(lost), lost_after_s)


def _open_storage(cfg: ServerConfig) -> tuple[Database, BatchWriter, LakeStorage | None]:
    """The embedded file, or a DuckLake when ``exporters.duckdb.lake`` is configured."""
    limits = {
        "max_group_records": cfg.batch_max_records,
        "max_queued_records": cfg.queue_max_records,
        "max_queued_bytes": cfg.write_queue_bytes(),
    }
    if cfg.lake_catalog is None or cfg.lake_data_path is None:
        db = Database(
            cfg.db_path,
            memory_limit_bytes=cfg.db_memory_limit_bytes,
            threads=cfg.duckdb_threads(),
            checkpoint_bytes=cfg.checkpoint_bytes(),
        )
        return db, BatchWriter(db, **limits), None
    from jobtrail.storage.lake import LakeConfig, S3Settings, open_lake

    s3 = {
        key: getattr(cfg, f"lake_s3_{key}")
        for key in ("endpoint", "region", "url_style", "use_ssl", "key_id", "secret")
    }
    try:
        lake_cfg = LakeConfig(
            catalog=cfg.lake_catalog,
            data_path=cfg.lake_data_path,
            commit_interval_s=cfg.lake_commit_interval_s,
            data_inlining_row_limit=cfg.lake_data_inlining_row_limit,
            s3=S3Settings(**s3) if any(v is not None for v in s3.values()) else None,
        )
    except ValueError as exc:
        raise DatabaseError(str(exc), path=cfg.lake_catalog) from exc
    retention = cfg.lake_retention()  # with the log cap and compact_interval
    if cfg.batch_max_records == ServerConfig().batch_max_records:
        del limits["max_group_records"]  # the lake writer's own default suits Parquet
    lake = open_lake(
        lake_cfg,
        lost_after_s=cfg.lost_after_s,
        retention=retention,
        threads=cfg.duckdb_threads(),
        memory_limit_bytes=cfg.db_memory_limit_bytes,
        **limits,
    )
    return lake.db, lake.writer, lake


async def serve(
    cfg: ServerConfig,
    *,
    ready_file: str | None = None,
    demo: bool = False,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the server until ``stop`` is set or SIGTERM/SIGINT arrives."""
    from jobtrail.api import Broker, create_app
    from jobtrail.api.web import add_web_routes

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            log.warning("second signal: exiting now")
            os._exit(130)
        log.info("stopping (send the signal again to exit at once)")
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal)
        except (NotImplementedError, RuntimeError):
            pass

    db, writer, lake = _open_storage(cfg)
    writer.start()
    stats = ReceiverStats()
    memory = MemoryLimiter(
        cfg.memory_limit_mib, cfg.memory_spike_limit_mib, cfg.memory_check_interval_s
    )
    ingestor = Ingestor(writer, stats, memory)
    tokens = TokenAuth(cfg.tokens) if cfg.tokens else None
    _warn_if_exposed(cfg)
    broker = Broker(db)
    if lake is None:
        writer.add_listener(broker.on_commit)
    else:  # every collector's commits reach the broker through the lake (docs/scaling.md)
        broker.last_log_id = lake.tasks.watch.last_log_id
    app = create_app(db, broker=broker)
    add_web_routes(app)
    retention = RetentionStats() if lake is None else None
    app.router.add_get("/metrics", metrics_handler(stats, writer, db, retention))
    if cfg.api_auth and tokens is not None:
        app.middlewares.append(api_auth_middleware(tokens))
    runner, api_port = await _start_site(app, cfg.api_host, cfg.api_port, cfg.api_tls)
    otlp_http, http_port = await _start_site(
        create_receiver_app(
            ingestor,
            max_bytes=cfg.http_max_recv_bytes,
            auth=tokens if cfg.http_auth else None,
        ),
        cfg.http_host,
        cfg.http_port,
        cfg.http_tls,
        receiver_runner,
    )
    receiver = OtlpGrpcReceiver(
        ingestor,
        host=cfg.grpc_host,
        port=cfg.grpc_port,
        max_recv_bytes=cfg.max_recv_bytes,
        max_concurrent_streams=cfg.grpc_max_concurrent_streams,
        auth=tokens if cfg.grpc_auth else None,
        tls=cfg.grpc_tls,
    )
    demo_proc: subprocess.Popen[bytes] | None = None
    try:
        await receiver.start()
        _settle_gc()
        endpoints = Endpoints(
            grpc=f"{cfg.grpc_host}:{receiver.port}",
            http=f"{'https' if cfg.http_tls else 'http'}://{cfg.http_host}:{http_port}",
            api=f"{'https' if cfg.api_tls else 'http'}://{cfg.api_host}:{api_port}",
        )
        print(
            f"jobtrail: database {db.path if lake else Path(cfg.db_path).resolve()}\n"
            f"jobtrail: OTLP/gRPC on {endpoints.grpc}\n"
            f"jobtrail: OTLP/HTTP on {endpoints.http}\n"
            f"jobtrail: API and web page on {endpoints.api}",
            flush=True,
        )
        native = {"log records": log_columns_available, "spans": span_columns_available}
        in_python = [what for what, built in native.items() if not built]
        if in_python:
            print(
                f"jobtrail: {' and '.join(in_python)} are decoded in Python (the C decoders were "
                "not built at install: no C compiler or Python headers); ingest costs more CPU "
                "per record",
                flush=True,
            )
        if ready_file:  # written whole, then renamed: a reader never sees half of it
            tmp = Path(f"{ready_file}.tmp")
            tmp.write_text(json.dumps(endpoints.as_dict()))
            tmp.replace(ready_file)
        if demo:
            demo_proc = subprocess.Popen(  # noqa: S603 - our own CLI
                [sys.executable, "-m", "jobtrail", "demo", "--endpoint", endpoints.grpc]
            )
        sweeper = asyncio.create_task(
            sweep_lost(writer, cfg.lost_after_s, broker.publish_jobs)
            if lake is None
            else lake.tasks.run(broker.on_commit, broker.publish_jobs)
        )
        pruner = (  # a pass at start, then every interval; chunks interleave with ingest
            asyncio.create_task(
                run_periodically(
                    writer.run,
                    cfg.retention_policy(),
                    read=cursor_reader(db.cursor),
                    stats=retention,
                )
            )
            if retention is not None
            else None
        )
        try:
            async with memory.running():
                await stop.wait()
        finally:
            sweeper.cancel()
            if pruner is not None:
                pruner.cancel()
    finally:
        if demo_proc is not None and demo_proc.poll() is None:
            demo_proc.terminate()
        await receiver.stop()
        await otlp_http.cleanup()
        await runner.cleanup()
        # Both off the loop: the drain and the final checkpoint can take seconds, and a
        # second signal must still be handled (exit at once) meanwhile.
        if await asyncio.to_thread(writer.close):
            await asyncio.to_thread(db.close)
        log.info("stopped")
