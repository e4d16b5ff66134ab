"""``jobtrail serve``: collector, writer and API in one process on one DuckDB file.

Start order is database -> writer -> API -> receivers, and shutdown is the reverse, so that
nothing is accepted that cannot be stored and everything accepted is committed before the
file is closed. SIGTERM/SIGINT stop it gracefully; a second signal exits at once (DuckDB's
write-ahead log keeps the file consistent either way).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from jobtrail.auth import TokenAuth, server_ssl_context
from jobtrail.collector import (
    Ingestor,
    MemoryLimiter,
    OtlpGrpcReceiver,
    ReceiverStats,
    create_receiver_app,
)
from jobtrail.config import ServerConfig
from jobtrail.selfmetrics import metrics_handler
from jobtrail.storage import Database
from jobtrail.storage.maintenance import forget_old_requests, mark_lost
from jobtrail.storage.writer import BatchWriter, WriterClosed

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


async def _start_site(
    app: web.Application, host: str, port: int, tls: tuple[str, str] | None = None
) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ssl_context = server_ssl_context(*tls) if tls else None
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    server = site._server  # noqa: SLF001 - aiohttp exposes no public accessor for the bound port
    bound = server.sockets[0].getsockname()[1] if server and server.sockets else port
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
                await writer.run(forget_old_requests)
            except WriterClosed:
                return
        try:
            lost = await writer.run(lambda con: mark_lost(con, lost_after_s))
        except WriterClosed:
            return
        except Exception:
            log.exception("marking lost jobs failed")
            continue
        if lost:
            on_lost(set(lost))
            log.info("%d job(s) lost (no sign of life for %.0f s)", len(lost), lost_after_s)


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

    db = Database(cfg.db_path)
    writer = BatchWriter(
        db,
        max_group_records=cfg.batch_max_records,
        max_queued_records=cfg.queue_max_records,
        max_queued_bytes=int(cfg.queue_max_mib * 1024 * 1024),
    )
    writer.start()
    stats = ReceiverStats()
    memory = MemoryLimiter(
        cfg.memory_limit_mib, cfg.memory_spike_limit_mib, cfg.memory_check_interval_s
    )
    ingestor = Ingestor(writer, stats, memory)
    tokens = TokenAuth(cfg.tokens) if cfg.tokens else None
    _warn_if_exposed(cfg)
    broker = Broker(db)
    writer.add_listener(broker.on_commit)
    app = create_app(db, broker=broker)
    add_web_routes(app)
    app.router.add_get("/metrics", metrics_handler(stats, writer, db))
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
    )
    receiver = OtlpGrpcReceiver(
        ingestor,
        host=cfg.grpc_host,
        port=cfg.grpc_port,
        max_recv_bytes=cfg.max_recv_bytes,
        auth=tokens if cfg.grpc_auth else None,
        tls=cfg.grpc_tls,
    )
    demo_proc: subprocess.Popen[bytes] | None = None
    try:
        await receiver.start()
        endpoints = Endpoints(
            grpc=f"{cfg.grpc_host}:{receiver.port}",
            http=f"{'https' if cfg.http_tls else 'http'}://{cfg.http_host}:{http_port}",
            api=f"{'https' if cfg.api_tls else 'http'}://{cfg.api_host}:{api_port}",
        )
        print(
            f"jobtrail: database {Path(cfg.db_path).resolve()}\n"
            f"jobtrail: OTLP/gRPC on {endpoints.grpc}\n"
            f"jobtrail: OTLP/HTTP on {endpoints.http}\n"
            f"jobtrail: API and web page on {endpoints.api}",
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
        sweeper = asyncio.create_task(sweep_lost(writer, cfg.lost_after_s, broker.publish_jobs))
        try:
            async with memory.running():
                await stop.wait()
        finally:
            sweeper.cancel()
    finally:
        if demo_proc is not None and demo_proc.poll() is None:
            demo_proc.terminate()
        await receiver.stop()
        await otlp_http.cleanup()
        await runner.cleanup()
        if await asyncio.to_thread(writer.close):  # drains the queue; a 2nd signal exits now
            db.close()
        log.info("stopped")
