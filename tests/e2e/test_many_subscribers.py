"""200 live subscribers, half of them never reading: memory stays bounded, ingest goes on."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import aiohttp

from e2e.harness import ServerProcess

LINES = 20_000


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _stored_logs(server: ServerProcess) -> int:
    return int(server.get("/api/stats")["logs"]["total"])


async def _reader(session: aiohttp.ClientSession, url: str, seen: list[int], want: int) -> None:
    """Count log events; on ``resume`` reconnect from the last id, as a real client does."""
    last_id: int | None = None
    while seen[0] < want:
        headers = {} if last_id is None else {"Last-Event-ID": str(last_id)}
        async with session.get(url, headers=headers) as resp:
            async for raw in resp.content:
                if raw.startswith(b"id: "):
                    last_id = int(raw[4:])
                elif raw.startswith(b"event: log"):
                    seen[0] += 1
                    if seen[0] >= want:
                        return
                elif raw.startswith(b"event: resume"):
                    seen[1] += 1
                    break


def _stalled_client(url: str) -> socket.socket:
    """An SSE client that sends its request and never reads a byte."""
    parts = urlparse(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
    sock.settimeout(10)
    sock.connect((parts.hostname, parts.port))
    sock.sendall(f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


async def test_two_hundred_subscribers(server: ServerProcess) -> None:
    assert server.proc is not None
    pid = server.proc.pid
    baseline_s = float(
        server.run_app("log_burst", str(LINES), timeout_s=120).strip().splitlines()[-1]
    )
    rss_before = _rss_mib(pid)

    url = f"{server.api}/api/logs/stream?type=job"
    stalled = [_stalled_client(url) for _ in range(100)]
    full = [[0, 0] for _ in range(5)]  # every line, resuming when cut off
    light = [[0, 0] for _ in range(95)]  # a filtered tail: warnings only
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=180)) as session:
        readers = [asyncio.create_task(_reader(session, url, s, LINES)) for s in full]
        readers += [
            asyncio.create_task(_reader(session, f"{url}&level=warn", s, LINES // 100))
            for s in light
        ]
        deadline = time.monotonic() + 15
        while server.get("/api/stream/status")["clients"] < 200:
            assert time.monotonic() < deadline, server.get("/api/stream/status")
            await asyncio.sleep(0.1)
        peak = [rss_before]

        async def sample() -> None:
            while True:
                peak[0] = max(peak[0], _rss_mib(pid))
                await asyncio.sleep(0.1)

        sampler = asyncio.create_task(sample())
        loaded_s = float(
            (await asyncio.to_thread(server.run_app, "log_burst", str(LINES), timeout_s=120))
            .strip().splitlines()[-1]
        )  # fmt: skip
        done, pending = await asyncio.wait(readers, timeout=90)
        for task in pending:
            task.cancel()
        assert not pending, (
            f"readers stuck: full={full} light={[s[0] for s in light][:10]} status={server.get('/api/stream/status')}"
        )
        sampler.cancel()
        status = server.get("/api/stream/status")
    for sock in stalled:
        sock.close()

    assert _stored_logs(server) >= 2 * LINES, "ingest completed with 200 subscribers attached"
    # Readers run in this process on the same 2 cores: some slowdown is theirs, not the
    # server's; the bound catches a server that stalls ingest behind its subscribers.
    assert loaded_s < baseline_s * 4 + 10, (
        f"agent send time {loaded_s:.1f}s vs {baseline_s:.1f}s alone"
    )
    assert all(s[0] == LINES for s in full), f"full readers: {full}"
    assert all(s[0] == LINES // 100 for s in light), "every filtered reader got its lines"
    assert status["cut_off"] + status["lagging"] >= 100, f"stalled clients not cut off: {status}"
    growth = peak[0] - rss_before
    assert growth < 300, f"RSS grew {growth:.0f} MiB with 200 subscribers"
    print(json.dumps({"baseline_s": baseline_s, "loaded_s": loaded_s, "rss_growth_mib": growth,
                      "resumes": sum(s[1] for s in full), "status": status}))  # fmt: skip
