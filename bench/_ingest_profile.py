"""The ingest benchmark's server profile: py-spy recording and its summary.

Optional (py-spy comes with the ``bench`` extra) and independent of the measured figures,
so it lives apart from :mod:`bench.ingest`, which only starts it and stores what it reads.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["PY_SPY", "profile_top", "start_py_spy"]

#: py-spy from the ``bench`` extra (next to this interpreter), else from PATH; without it the
#: profile is skipped.
PY_SPY = Path(sys.executable).with_name("py-spy")
if not PY_SPY.exists():
    PY_SPY = Path(shutil.which("py-spy") or "/nonexistent/py-spy")


def start_py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """Sample process ``pid`` for ``seconds`` (whole) into ``out``; None without py-spy."""
    if not PY_SPY.exists():
        return None
    return subprocess.Popen(
        [
            str(PY_SPY), "record", "-p", str(pid), "-d", str(int(seconds)),
            "-r", "100", "--format", "raw", "--nonblocking", "-o", str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")


def _function(frame: str) -> str:
    """``func (file:line)`` -> ``func (file)``: py-spy's frames aggregated per function."""
    m = _FRAME.match(frame)
    return f"{m.group(1)} ({m.group(2)})" if m else frame


def profile_top(raw: Path, top: int = 20) -> dict[str, Any]:
    """Top functions by self and by inclusive share of samples, from py-spy's raw output.

    py-spy samples every thread that is running (not idle), so the shares are of the
    server's busy time across its threads (event loop, writer, DuckDB calls).
    """
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = [_function(f) for f in stack.split(";")]
        total += n
        self_c[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
        threads["writer thread" if any("BatchWriter._run" in f for f in frames)
                else "event loop" if any("run_forever" in f for f in frames)
                else "other"] += n  # fmt: skip
    if not total:
        return {"samples": 0, "self": [], "inclusive": [], "threads": {}}
    return {
        "samples": total,
        "threads": {k: 100 * v / total for k, v in threads.most_common()},
        "self": [(f, 100 * c / total) for f, c in self_c.most_common(top)],
        "inclusive": [
            (f, 100 * c / total)
            for f, c in incl.most_common(top + 15)
            if not f.startswith(("<module>", "_run_", "Thread.", "run (asyncio"))
        ][:top],
    }
