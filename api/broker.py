"""Live fan-out: one database read per commit, shared by every subscriber.

The writer calls :meth:`Broker.on_commit` after each commit (on its own thread). The broker
hops to the event loop, reads what that commit stored — the new log records by id range and
the changed job rows — once, and offers each event to every subscriber whose filter matches.
There is no per-client polling loop: 200 clients cost one query per commit.

Each subscriber has a bounded queue. One that cannot keep up is cut off with a final
``resume`` event naming the last id it was given, so it reconnects with ``Last-Event-ID`` and
replays from the database instead of holding server memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jobtrail.storage import Database
from jobtrail.storage.live import jobs_by_ids, logs_in_range
from jobtrail.storage.writer import CommitInfo

log = logging.getLogger(__name__)

_DEFAULT_BUFFER = 1000


@dataclass(slots=True)
class Event:
    """One live event: ``kind`` is ``log`` or ``job``; ``id`` orders and resumes them."""

    kind: str
    id: int
    data: dict[str, Any]


@dataclass(eq=False)
class Subscriber:
    """A connected client: what it wants, and its bounded queue of events."""

    stream: str
    wants: Callable[[Event], bool]
    queue: asyncio.Queue[Event | None] = field(
        default_factory=lambda: asyncio.Queue(_DEFAULT_BUFFER)
    )
    last_id: int = 0
    lagging: bool = False

    def offer(self, event: Event) -> None:
        """Queue an event, or cut the subscriber off if its buffer is full."""
        if self.lagging or not self.wants(event):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # Drop everything queued (not just the oldest): the client resumes after the last
            # id it actually received, and the replay from the database covers the rest
            # without a gap.
            self.lagging = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)  # the reader turns this into a `resume` event


class Broker:
    """Receives commit notifications and fans events out to subscribers."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._subscribers: set[Subscriber] = set()
        self._commits: asyncio.Queue[CommitInfo] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.last_log_id = 0
        self.events_published = 0
        self.cut_off = 0

    def start(self) -> None:
        """Start the dispatch task on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._dispatch(), name="jobtrail-broker")

    def end_streams(self) -> None:
        """Tell every subscriber to go (a ``resume`` event): the server is shutting down.

        Runs at the start of shutdown so open streams end at once instead of holding the
        shutdown until their next keep-alive finds the client gone.
        """
        for sub in list(self._subscribers):
            while not sub.queue.empty():
                sub.queue.get_nowait()
            sub.queue.put_nowait(None)

    async def stop(self) -> None:
        """Stop dispatching and end every subscriber's stream."""
        self.end_streams()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def on_commit(self, info: CommitInfo) -> None:
        """Writer-thread callback: hand the commit to the event loop (never blocks)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if info.logs or info.job_ids:
            loop.call_soon_threadsafe(self._commits.put_nowait, info)

    def publish_jobs(self, job_ids: set[str]) -> None:
        """Announce job changes made outside ingest (e.g. jobs marked lost)."""
        if job_ids:
            self._commits.put_nowait(CommitInfo(job_ids=set(job_ids)))

    @contextlib.contextmanager
    def subscribe(self, stream: str, wants: Callable[[Event], bool]) -> Iterator[Subscriber]:
        """Register a subscriber for as long as the context is open."""
        sub = Subscriber(stream, wants)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)
            self.cut_off += sub.lagging

    def status(self) -> dict[str, Any]:
        """Connected clients per stream, for ``/api/stream/status``."""
        per_stream: dict[str, int] = {}
        lagging = 0
        for sub in self._subscribers:
            per_stream[sub.stream] = per_stream.get(sub.stream, 0) + 1
            lagging += sub.lagging
        return {
            "clients": len(self._subscribers),
            "by_stream": per_stream,
            "lagging": lagging,
            "cut_off": self.cut_off,
            "last_log_id": self.last_log_id,
            "events_published": self.events_published,
        }

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            info = await self._commits.get()
            if not self._subscribers:
                if info.last_log_id:
                    self.last_log_id = info.last_log_id
                continue
            try:
                events = await loop.run_in_executor(None, self._read, info)
            except Exception:
                log.exception("reading a commit for live subscribers failed")
                continue
            for event in events:
                self.events_published += 1
                for sub in list(self._subscribers):
                    sub.offer(event)

    def _read(self, info: CommitInfo) -> list[Event]:
        cur = self._db.cursor()
        try:
            events: list[Event] = []
            last = info.last_log_id or self.last_log_id
            if info.first_log_id is not None and info.last_log_id is not None:
                for row in logs_in_range(cur, info.first_log_id, info.last_log_id):
                    events.append(Event("log", int(row["id"]), dict(row)))
                self.last_log_id = info.last_log_id
            if info.job_ids:
                for job in jobs_by_ids(cur, sorted(info.job_ids)):
                    events.append(Event("job", last, dict(job)))
            return events
        finally:
            cur.close()
