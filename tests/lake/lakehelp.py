"""Helpers of the in-process lake tests: store OTLP requests, run the link sweeps."""

from __future__ import annotations

from typing import Any

from jobtrail.collector import decode_logs, decode_traces
from jobtrail.storage.lake import LakeStorage
from jobtrail.storage.writer import BatchWriter

Request = tuple[str, Any]  # ("traces" | "logs", request)


async def store(writer: BatchWriter, request: Request) -> None:
    kind, req = request
    decoded = decode_traces(req) if kind == "traces" else decode_logs(req)
    await writer.write(decoded.batch)


async def settle(*sides: LakeStorage) -> None:
    """Run every collector's link sweep (what the periodic task does every second)."""
    for side in sides:
        await side.writer.run(side.tasks.sweep)
