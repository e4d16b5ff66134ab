"""The memory limiter: refuse new data while the process is above its memory limit.

Like the OpenTelemetry Collector's ``memory_limiter`` processor: a soft limit of
``limit_mib - spike_limit_mib`` is checked every ``check_interval``; above it, receivers
answer with retryable refusals until memory falls again. Reading RSS is one small file read
on Linux, cheap enough to do on a timer rather than per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

log = logging.getLogger(__name__)

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _libc(name: str, argtypes: list[Any], restype: Any) -> Callable[..., int] | None:
    """A function of the C library (glibc's ``malloc_trim``, ``mallopt``), if present."""
    lib = ctypes.util.find_library("c")
    try:
        fn = getattr(ctypes.CDLL(lib), name) if lib else None
    except (OSError, AttributeError):
        return None
    if fn is not None:
        fn.argtypes, fn.restype = argtypes, restype
    return fn  # type: ignore[no-any-return]


#: Hands freed heap pages back to the system. Python frees most objects at once, but the
#: allocator keeps their pages for reuse, so RSS stays up after a burst of large requests
#: and the limiter would go on refusing on memory that is already free.
_TRIM = _libc("malloc_trim", [ctypes.c_size_t], ctypes.c_int)
_MALLOPT = _libc("mallopt", [ctypes.c_int, ctypes.c_int], ctypes.c_int)
_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
#: Blocks from this size up get a mapping of their own, unmapped when freed.
MMAP_THRESHOLD_BYTES = 256 * 1024


def map_large_blocks(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Have the C allocator give every block of ``threshold_bytes`` or more its own mapping.

    glibc starts at 128 KiB but raises its threshold (up to 32 MiB) each time such a block
    is freed, so after the first requests request bodies and column buffers (100 KiB to a
    few MiB) come from the heap, and the holes they leave stay with the process: after an
    overload RSS stayed above the soft limit and the limiter went on refusing. A fixed
    threshold returns them on free; ingest did not slow down (docs/benchmarks.md, round
    11). Returns whether it was set (glibc only).
    """
    return _MALLOPT is not None and _MALLOPT(_M_MMAP_THRESHOLD, threshold_bytes) == 1


def rss_bytes() -> int:
    """Resident set size of this process (0 where it cannot be read)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class MemoryLimiter:
    """Tracks whether the process is over its soft memory limit.

    Args:
        limit_mib: Hard limit; 0 disables the limiter.
        spike_limit_mib: Headroom kept for spikes; the soft limit is ``limit - spike``.
        check_interval_s: How often RSS is read. A tenth of a second: memory grows by what
            arrives between two checks. At 10x the sustainable load half a second let RSS
            reach the hard limit (docs/benchmarks.md, round 5); once the server stored more
            per second, so did a quarter second (round 7: 508–513 MiB of 512, against
            469–481 every 0.1 s).
    """

    def __init__(
        self,
        limit_mib: float = 0,
        spike_limit_mib: float | None = None,
        check_interval_s: float = 0.1,
    ) -> None:
        if limit_mib < 0 or check_interval_s <= 0:
            raise ValueError("limit_mib must be >= 0 and check_interval_s > 0")
        spike = limit_mib * 0.2 if spike_limit_mib is None else spike_limit_mib
        if limit_mib and not 0 <= spike < limit_mib:
            raise ValueError("spike_limit_mib must be below limit_mib")
        self.soft_limit_bytes = int((limit_mib - spike) * 1024 * 1024)
        self.enabled = limit_mib > 0
        self.check_interval_s = check_interval_s
        self.over_limit = False
        self.last_rss = 0

    def check(self) -> bool:
        """Read RSS now and update :attr:`over_limit`."""
        if not self.enabled:
            return False
        self.last_rss = rss_bytes()
        over = self.last_rss > self.soft_limit_bytes
        if over and _TRIM is not None:
            # As the Collector's limiter forces a GC: return freed pages (~20 ms), then
            # judge by what is really held.
            _TRIM(0)
            self.last_rss = rss_bytes()
            over = self.last_rss > self.soft_limit_bytes
        if over != self.over_limit:
            log.warning(
                "memory %s soft limit (%d MiB of %d MiB): %s new data",
                "above" if over else "back below",
                self.last_rss >> 20,
                self.soft_limit_bytes >> 20,
                "refusing" if over else "accepting",
            )
        self.over_limit = over
        return over

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[MemoryLimiter]:
        """Check periodically for as long as the context is open."""
        if not self.enabled:
            yield self
            return
        map_large_blocks()

        async def loop() -> None:
            while True:
                self.check()
                await asyncio.sleep(self.check_interval_s)

        task = asyncio.create_task(loop(), name="jobtrail-memory-limiter")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
