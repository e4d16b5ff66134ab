"""Live streams over Server-Sent Events and WebSocket.

Every stream is one async generator of :class:`~jobtrail.api.broker.Event` values —
replay from the database after ``Last-Event-ID``, then live events from the broker — and two
thin transports write it out. Log events carry the log id as the event id, job events the
id of the newest log at that commit, so ids only grow and a reconnect with
``Last-Event-ID`` neither loses nor repeats a log record.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from jobtrail.api import params as p
from jobtrail.api._keys import BROKER_KEY, READER_KEY
from jobtrail.api.broker import Event
from jobtrail.semconv import FINAL_JOB_STATUSES, LEVELS
from jobtrail.storage import queries
from jobtrail.storage.live import log_matches, logs_after

stream_routes = web.RouteTableDef()

_KEEPALIVE_S = 15.0
_END_GRACE_S = 1.5
_REPLAY_PAGE = 5000
_REPLAY_MAX = 200_000
_JOB_STREAM_PARAMS = frozenset({"level", "step", "span_id", "q", "events", "last_event_id"})
_LOG_STREAM_PARAMS = frozenset(
    {"type", "level", "category", "service", "job", "step", "span_id", "q", "events",
     "last_event_id"}
)  # fmt: skip
_JOBS_STREAM_PARAMS = frozenset({"type", "status", "owner", "service"})
_LOG_KINDS = ("job", "step", "system")

Events = AsyncIterator[Event | None]


def _last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise queries.InvalidParameter(
            f"Last-Event-ID must be an integer, got {raw!r}", name="last_event_id"
        ) from None
    if not 0 <= value <= p.MAX_INT:
        raise queries.InvalidParameter(
            f"Last-Event-ID must be between 0 and {p.MAX_INT}", name="last_event_id"
        )
    return value


async def _replay(
    request: web.Request, flt: queries.LogFilter, after_id: int
) -> AsyncIterator[Event]:
    reader = request.app[READER_KEY]
    sent = 0
    while sent < _REPLAY_MAX:
        rows = await reader.run(logs_after, after_id, flt, limit=_REPLAY_PAGE)
        for row in rows:
            yield Event("log", int(row["id"]), dict(row))
        if len(rows) < _REPLAY_PAGE:
            return
        after_id = int(rows[-1]["id"])
        sent += len(rows)


def _final_status(event: Event) -> str | None:
    status = event.data.get("status")
    return str(status) if event.kind == "job" and status in FINAL_JOB_STATUSES else None


async def _live(
    request: web.Request,
    stream: str,
    wants: Callable[[Event], bool],
    *,
    flt: queries.LogFilter | None,
    after_id: int | None,
    snapshot: Callable[[], Any] | None = None,
    ends: bool = False,
) -> AsyncIterator[Event | None]:
    """Replay (when ``after_id`` is given), then live events; ``None`` means "resume".

    With ``ends``, the stream ends once the job reached a final status and no more of its
    records arrived for :data:`_END_GRACE_S` — a job's span and its last log records travel
    through different exporters, so the status can arrive before the last lines.
    """
    broker = request.app[BROKER_KEY]
    loop = asyncio.get_running_loop()
    end_at: float | None = None
    final: str | None = None
    with broker.subscribe(stream, wants) as sub:
        last = after_id if after_id is not None else broker.last_log_id
        if flt is not None and after_id is not None:
            async for event in _replay(request, flt, after_id):
                last = max(last, event.id)
                yield event
        if snapshot is not None:
            for event in await snapshot():
                final = final or _final_status(event)
                yield event
        while True:
            if ends and final is not None and end_at is None:
                end_at = loop.time() + _END_GRACE_S
            wait = _KEEPALIVE_S if end_at is None else max(0.0, end_at - loop.time())
            try:
                event = await asyncio.wait_for(sub.queue.get(), wait)
            except TimeoutError:
                if end_at is not None:
                    yield Event("end", last, {"status": final})
                    return
                yield Event("keepalive", last, {})
                continue
            if event is None:
                yield None
                return
            if event.kind == "log" and event.id <= last:
                continue  # already replayed
            if event.kind == "log":
                last = event.id
                if end_at is not None:
                    end_at = loop.time() + _END_GRACE_S
            final = _final_status(event) or final
            yield event


def _job_stream(request: web.Request) -> AsyncIterator[Event | None]:
    q = request.query
    p.check_known(q, _JOB_STREAM_PARAMS)
    job_id = request.match_info["id"]
    flt = queries.LogFilter(
        job_id=job_id,
        levels=p.get_list(q, "level", LEVELS),
        step=p.get_str(q, "step"),
        span_id=p.get_span_id(q),
        q=p.get_str(q, "q"),
        include_events=p.get_bool(q, "events"),
    )
    after_id = _last_event_id(request)

    def wants(event: Event) -> bool:
        if event.kind == "job":
            return bool(event.data.get("id") == job_id)
        return log_matches(flt, event.data)

    async def snapshot() -> list[Event]:
        job = await request.app[READER_KEY].run(queries.get_job, job_id)
        return [Event("job", request.app[BROKER_KEY].last_log_id, dict(job))]

    return _live(
        request, "job", wants, flt=flt, after_id=0 if after_id is None else after_id,
        snapshot=snapshot, ends=True,
    )  # fmt: skip


def _logs_stream(request: web.Request) -> AsyncIterator[Event | None]:
    q = request.query
    p.check_known(q, _LOG_STREAM_PARAMS)
    flt = p.log_filter(q, with_range=False)
    return _live(
        request, "logs", lambda e: e.kind == "log" and log_matches(flt, e.data),
        flt=flt, after_id=_last_event_id(request),
    )  # fmt: skip


def _jobs_stream(request: web.Request) -> AsyncIterator[Event | None]:
    q = request.query
    p.check_known(q, _JOBS_STREAM_PARAMS)
    wanted = {
        "type": p.get_str(q, "type"),
        "owner": p.get_str(q, "owner"),
        "service": p.get_str(q, "service"),
    }
    statuses = p.get_list(q, "status")

    def wants(event: Event) -> bool:
        if event.kind != "job":
            return False
        if statuses and event.data.get("status") not in statuses:
            return False
        return all(v is None or event.data.get(k) == v for k, v in wanted.items())

    return _live(request, "jobs", wants, flt=None, after_id=None)


async def _check_job(request: web.Request) -> None:
    await request.app[READER_KEY].run(queries.get_job, request.match_info["id"])


async def _sse(request: web.Request, events: Events) -> web.StreamResponse:
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await resp.prepare(request)
    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        await resp.write(b"retry: 1000\n\n")
        async for event in events:
            if event is None:
                await resp.write(b"event: resume\ndata: {}\n\n")
                break
            if event.kind == "keepalive":
                await resp.write(b": keepalive\n\n")
                continue
            data = orjson.dumps(event.data)
            if event.kind == "end":
                await resp.write(b"event: end\ndata: %s\n\n" % data)
                break
            kind = event.kind.encode()
            await resp.write(b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, kind, data))
    return resp


async def _ws(request: web.Request, events: Events) -> web.StreamResponse:
    ws = web.WebSocketResponse(heartbeat=_KEEPALIVE_S)
    await ws.prepare(request)

    async def drain_incoming() -> None:
        async for msg in ws:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break

    reader = asyncio.create_task(drain_incoming())
    try:
        async for event in events:
            if ws.closed:
                break
            if event is None:
                await ws.send_json({"event": "resume"})
                break
            if event.kind == "keepalive":
                continue
            message = {"event": event.kind, "id": event.id, "data": event.data}
            await ws.send_str(orjson.dumps(message).decode())
            if event.kind == "end":
                break
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        reader.cancel()
        await ws.close()
    return ws


@stream_routes.get("/api/jobs/stream")
async def jobs_sse(request: web.Request) -> web.StreamResponse:
    """Job created/changed/finished events (SSE)."""
    return await _sse(request, _jobs_stream(request))


@stream_routes.get("/api/jobs/ws")
async def jobs_ws(request: web.Request) -> web.StreamResponse:
    """Job events (WebSocket)."""
    return await _ws(request, _jobs_stream(request))


@stream_routes.get("/api/jobs/{id}/stream")
async def job_sse(request: web.Request) -> web.StreamResponse:
    """A job's logs, progress, steps and status until it ends (SSE)."""
    events = _job_stream(request)
    await _check_job(request)
    return await _sse(request, events)


@stream_routes.get("/api/jobs/{id}/ws")
async def job_ws(request: web.Request) -> web.StreamResponse:
    """A job's live events (WebSocket)."""
    events = _job_stream(request)
    await _check_job(request)
    return await _ws(request, events)


@stream_routes.get("/api/logs/stream")
async def logs_sse(request: web.Request) -> web.StreamResponse:
    """Live tail of all logs with the filters of ``/api/logs`` (SSE)."""
    return await _sse(request, _logs_stream(request))


@stream_routes.get("/api/logs/ws")
async def logs_ws(request: web.Request) -> web.StreamResponse:
    """Live tail of all logs (WebSocket)."""
    return await _ws(request, _logs_stream(request))


@stream_routes.get("/api/stream/status")
async def stream_status(request: web.Request) -> web.Response:
    """Connected live clients per stream."""
    return web.json_response(request.app[BROKER_KEY].status())
