"""The memory limiter refuses while a backlog waits, and never locks an idle server out."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from otlp_build import new_span_id, new_trace_id, span, traces_request

from jobtrail.collector import Ingestor, MemoryLimiter
from jobtrail.collector.outcomes import Overloaded
from jobtrail.storage import Database
from jobtrail.storage.writer import BatchWriter


def _body() -> bytes:
    return traces_request([span(new_trace_id(), new_span_id(), "s", {})]).SerializeToString()


async def test_refuses_only_with_a_backlog(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.duckdb")
    writer = BatchWriter(db)  # not started yet: what is queued stays queued
    memory = MemoryLimiter(limit_mib=64, spike_limit_mib=0)
    memory.over_limit = True  # as if RSS were above the soft limit
    ingestor = Ingestor(writer, memory=memory)
    first = asyncio.ensure_future(ingestor.export("traces", "test", _body()))
    await asyncio.sleep(0.05)
    assert writer.queued_records == 1
    with pytest.raises(Overloaded):
        await ingestor.export("traces", "test", _body())
    writer.start()
    await first
    assert writer.queued_records == 0
    await ingestor.export("traces", "test", _body())  # over the limit, but nothing waits
    await asyncio.to_thread(writer.close)
    row = db.cursor().execute("SELECT count(*) FROM spans").fetchone()
    assert row == (2,)
    db.close()


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        MemoryLimiter(limit_mib=100, spike_limit_mib=100)
    assert not MemoryLimiter(limit_mib=0).check()
    assert MemoryLimiter(limit_mib=1, spike_limit_mib=0).check()  # any process is over 1 MiB


def test_freed_heap_does_not_count_against_the_limit() -> None:
    from jobtrail.collector.memory import _TRIM, rss_bytes

    if _TRIM is None:
        pytest.skip("no malloc_trim in this C library")
    _TRIM(0)
    base = rss_bytes()
    burst = [bytearray(1000) for _ in range(200_000)]  # ~200 MiB in small blocks, as requests
    survivors = burst[::50]  # a few live objects pin the heap: free pages sit between them
    del burst
    held = rss_bytes()
    if held - base < 100 * 1024 * 1024:
        pytest.skip("the allocator already returned the burst's pages")
    memory = MemoryLimiter(limit_mib=(base >> 20) + 100, spike_limit_mib=0)
    assert not memory.check()  # RSS was above the soft limit only with freed pages
    assert memory.last_rss < memory.soft_limit_bytes < held
    assert len(survivors) == 4000


_HOLES = """
import sys
from jobtrail.collector.memory import map_large_blocks, rss_bytes
if sys.argv[1] == "mapped":
    assert map_large_blocks()
bytearray(1 << 20)  # a large block, freed at once: glibc raises its own threshold past it
blocks = [bytearray(512 * 1024) for _ in range(200)]  # 100 MiB
held = rss_bytes()
del blocks[::2]  # every other one: holes between live blocks, as requests leave them
print((held - rss_bytes()) >> 20)
"""


def _freed_mib(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _HOLES, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


def test_large_blocks_go_back_to_the_system_when_freed() -> None:
    from jobtrail.collector.memory import _MALLOPT

    if _MALLOPT is None:
        pytest.skip("no mallopt in this C library")
    if _freed_mib("default") >= 40:
        pytest.skip("this allocator already returns such blocks")
    assert _freed_mib("mapped") >= 45  # of the 50 MiB freed


async def test_a_running_limiter_maps_large_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    from jobtrail.collector import memory

    calls: list[int] = []
    monkeypatch.setattr(memory, "map_large_blocks", lambda: calls.append(1) or True)
    async with MemoryLimiter(limit_mib=0).running():  # no limiter: the allocator is left alone
        pass
    assert calls == []
    async with MemoryLimiter(limit_mib=4096).running():
        pass
    assert calls == [1]
