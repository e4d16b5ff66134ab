"""Helpers of the in-process lake tests: store OTLP requests, run the link sweeps."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from jobtrail.collector import decode_logs, decode_traces
from jobtrail.storage.lake import LakeConfig, LakeStorage, open_lake
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


@contextlib.contextmanager
def open_pair(lake_config: LakeConfig) -> Iterator[tuple[LakeStorage, LakeStorage]]:
    """Two collectors' storage on one lake, writers started; closed on exit."""
    pair = (open_lake(lake_config, lost_after_s=60), open_lake(lake_config, lost_after_s=60))
    for side in pair:
        side.writer.start()
    try:
        yield pair
    finally:
        for side in pair:
            side.writer.close()
            side.db.close()
