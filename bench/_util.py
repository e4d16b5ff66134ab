"""Shared pieces: a ``jobtrail serve`` process, /proc accounting, statistics, output."""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RESULTS_DIR = Path(__file__).parent / "results"
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


# --- /proc ---------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def rss_bytes(pid: int) -> int:
    """Current resident set size."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE


def peak_rss_bytes(pid: int) -> int:
    """Peak resident set size so far (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


class RssSampler:
    """Samples a process's RSS every ``interval_s`` on a thread (peak and time series)."""

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic() - self._t0, rss_bytes(self.pid)))
            except OSError:
                return
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> int:
        return max((s for _, s in self.samples), default=0)


# --- the server ----------------------------------------------------------------------------


def _extra_config() -> dict[str, Any]:
    """``BENCH_SERVER_CONFIG``: a YAML/JSON mapping merged into every server's config.

    For A/B runs of one setting against the default, for example
    ``BENCH_SERVER_CONFIG='{exporters: {duckdb: {checkpoint_threshold: 16MiB}}}'``.
    """
    text = os.environ.get("BENCH_SERVER_CONFIG", "").strip()
    if not text:
        return {}
    extra = yaml.safe_load(text)
    if not isinstance(extra, dict):
        raise ValueError("BENCH_SERVER_CONFIG must be a mapping")
    return extra


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class Server:
    """``jobtrail serve`` on ephemeral ports, on ``db`` with ``config``."""

    workdir: Path
    db: Path
    config: dict[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    grpc: str = ""
    http: str = ""
    api: str = ""

    def start(self, timeout_s: float = 120.0) -> Server:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "config.yaml"
        config = _merged(self.config or {}, _extra_config())
        cfg.write_text(yaml.safe_dump(config) if config else "{}\n")
        ready = self.workdir / "ready.json"
        ready.unlink(missing_ok=True)
        self._log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 - closed in stop()
        # BENCH_SERVER_CMD replaces ``python -m jobtrail`` (to try a patched server).
        command = os.environ.get("BENCH_SERVER_CMD", "").split() or [
            sys.executable,
            "-m",
            "jobtrail",
        ]
        self.proc = subprocess.Popen(
            [
                *command, "serve", "--config", str(cfg),
                "--db", str(self.db), "--grpc-port", "0", "--http-port", "0",
                "--api-port", "0", "--ready-file", str(ready),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while not ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited ({self.proc.returncode}); see {self.workdir / 'server.log'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("server did not become ready")
            time.sleep(0.05)
        time.sleep(0.05)
        ends = json.loads(ready.read_text())
        self.grpc, self.http, self.api = ends["grpc"], ends["http"], ends["api"]
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout_s: float = 120.0) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        self.proc = None
        return code

    def wait_idle(self, cores: float = 0.1, window_s: float = 0.5, timeout_s: float = 120) -> float:
        """Wait until the server's CPU use stays under ``cores`` (start-up work done)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            c0 = cpu_seconds(self.pid)
            time.sleep(window_s)
            if (cpu_seconds(self.pid) - c0) / window_s < cores:
                break
        return time.monotonic() - t0

    def get(self, path: str, timeout_s: float = 60.0, **params: Any) -> bytes:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.api}{path}" + (f"?{query}" if query else "")
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - loopback
            return bytes(resp.read())

    def metrics(self) -> dict[str, float]:
        """``/metrics`` as {``name{labels}``: value}."""
        out: dict[str, float] = {}
        for line in self.get("/metrics").decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def stored(self) -> float:
        """Records committed so far (sum over signals)."""
        m = self.metrics()
        return sum(v for k, v in m.items() if k.startswith("jobtrail_records_stored_total"))


def metric_sum(metrics: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in metrics.items() if k.startswith(prefix))


# --- statistics and output ---------------------------------------------------------------


def spread(values: list[float]) -> dict[str, float]:
    """min / median / max of repeated measurements."""
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "n": len(values),
    }


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1), nearest-rank on sorted values."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(q * len(ordered) + 0.5)) - 1))
    return ordered[k]


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import duckdb
    import google.protobuf
    import grpc
    import pyarrow

    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    try:
        from google.protobuf.internal import api_implementation

        backend = api_implementation.Type()
    except Exception:  # noqa: BLE001
        backend = "?"
    mem = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    repo = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout.strip()
    except OSError:
        commit = ""
    pressure = Path("/proc/pressure/cpu")
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "mem_gib": round(int(mem.group(1)) / 2**20, 1) if mem else None,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
        "protobuf": f"{google.protobuf.__version__} ({backend})",
        "grpcio": grpc.__version__,
        "kernel": platform.release(),
        "git": commit,
        "server_config_override": os.environ.get("BENCH_SERVER_CONFIG") or None,
        # Share of time runnable tasks waited for a CPU over the last 5 minutes, at start:
        # how busy the shared machine was.
        "cpu_pressure_avg300": (
            float(re.search(r"avg300=([\d.]+)", pressure.read_text()).group(1))  # type: ignore[union-attr]
            if pressure.exists()
            else None
        ),
    }


def cpu_pressure_total_us() -> int | None:
    """``some`` CPU pressure stall time so far (µs), or None without PSI."""
    path = Path("/proc/pressure/cpu")
    if not path.exists():
        return None
    m = re.search(r"some .*total=(\d+)", path.read_text())
    return int(m.group(1)) if m else None


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    data = {"benchmark": name, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **data}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    """A plain-text table (also valid Markdown)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r: tuple[str, ...]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def fmt(x: float, digits: int = 0) -> str:
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def fmt_spread(s: dict[str, float], digits: int = 0, scale: float = 1.0) -> str:
    return (
        f"{fmt(s['median'] * scale, digits)} "
        f"({fmt(s['min'] * scale, digits)}–{fmt(s['max'] * scale, digits)})"
    )


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
