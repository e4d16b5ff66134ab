"""A small Server-Sent Events client for tests (aiohttp, bounded by timeouts)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class SseEvent:
    event: str
    id: int | None
    data: Any
    received: float


async def sse_events(
    url: str, *, last_event_id: int | None = None, timeout_s: float = 60
) -> AsyncIterator[SseEvent]:
    """Yield events until the server closes the stream (or the timeout passes)."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(
        url, headers=headers
    ) as resp:
        assert resp.status == 200, await resp.text()
        fields: dict[str, str] = {}
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line == "":
                if "data" in fields:
                    yield SseEvent(
                        fields.get("event", "message"),
                        int(fields["id"]) if "id" in fields else None,
                        json.loads(fields["data"]),
                        time.time(),
                    )
                fields = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
