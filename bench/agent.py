"""3. Agent overhead: the jobtrail agent vs the bare OTel SDK, exporting to one server.

Per repeat the variants of :mod:`bench._agent_app` run in turn (agent, sdk, sdk-sized,
each a fresh process), so the ratios agent/sdk are taken pair by pair on the same machine
state. Then each variant logs a 10k lines/s burst; what reached the database is counted
per ``service.name`` after the server stops, and the agent's own ``agent_stats()`` says
what it dropped.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import duckdb

from bench import _util as u

VARIANTS = ("agent", "sdk", "sdk-sized")


def _app(server: u.Server, variant: str, service: str, *extra: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench._agent_app", "--variant", variant,
         "--endpoint", server.grpc, "--service", service, *extra],
        capture_output=True,
        cwd=Path(__file__).parent.parent,
        timeout=300,
        check=False,
    )  # fmt: skip
    lines = proc.stdout.decode().strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{variant} app failed: {proc.stderr.decode()[-2000:]}")
    return json.loads(lines[-1])


def _stored_by_service(db: Path) -> dict[str, dict[str, int]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        out: dict[str, dict[str, int]] = {}
        for table in ("spans", "logs"):
            for service, n in con.execute(
                f"SELECT service, count(*) FROM {table} GROUP BY 1"  # noqa: S608
            ).fetchall():
                out.setdefault(service or "", {})[table] = int(n)
        lifecycle = con.execute(
            "SELECT service, count(*) FROM logs WHERE event_name IS NOT NULL GROUP BY 1"
        ).fetchall()
        for service, n in lifecycle:
            out.setdefault(service or "", {})["lifecycle_logs"] = int(n)
        return out
    finally:
        con.close()


def run(*, quick: bool = False, repeats: int | None = None) -> dict[str, Any]:
    """Overhead pairs and bursts; returns the JSON-ready result."""
    repeats = repeats or (2 if quick else 5)
    jobs = 50 if quick else 150
    burst_s = 2.0 if quick else 3.0
    workdir = Path(tempfile.mkdtemp(prefix="jobtrail-bench-agent-"))
    db = workdir / "agent.duckdb"
    server = u.Server(workdir, db).start()
    runs: list[dict[str, Any]] = []
    bursts: list[dict[str, Any]] = []
    try:
        for r in range(repeats):
            u.log(f"agent: overhead repeat {r + 1}/{repeats}")
            for variant in VARIANTS:
                res = _app(server, variant, f"ovh-{variant}-{r}", "--jobs", str(jobs))
                res["repeat"] = r
                res["service"] = f"ovh-{variant}-{r}"
                res["median_job_us"] = statistics.median(res["job_us"])
                res["mean_job_us"] = res["loop_s"] / jobs * 1e6
                res["cpu_per_job_us"] = res["loop_cpu_s"] / jobs * 1e6
                del res["job_us"]
                runs.append(res)
        u.log("agent: cProfile of the agent's job loop (application thread)")
        prof = _app(server, "agent", "profile-agent", "--jobs", str(jobs), "--profile")
        for variant in VARIANTS:
            u.log(f"agent: 10k lines/s burst for {burst_s:.0f} s ({variant})")
            res = _app(server, variant, f"burst-{variant}", "--mode", "burst", "--rate", "10000",
                       "--seconds", str(burst_s))  # fmt: skip
            res["service"] = f"burst-{variant}"
            bursts.append(res)
    finally:
        server.stop()
    stored = _stored_by_service(db)
    for res in runs:
        got = stored.get(res["service"], {})
        res["stored_logs"] = got.get("logs", 0)
        res["stored_spans"] = got.get("spans", 0)
        res["lifecycle_logs"] = got.get("lifecycle_logs", 0)
        res["user_lines_lost"] = res["lines"] - (res["stored_logs"] - res["lifecycle_logs"])
        # What the variant handed to its SDK per job: stored + lost (the agent's extra
        # lifecycle records included).
        emitted = res["stored_logs"] + res["stored_spans"] + max(0, res["user_lines_lost"])
        res["records_per_job"] = emitted / res["jobs"]
        res["us_per_record"] = res["mean_job_us"] / res["records_per_job"]
    for res in bursts:
        got = stored.get(res["service"], {})
        user_lines = got.get("logs", 0) - got.get("lifecycle_logs", 0)
        res["stored_lines"] = user_lines
        res["lost_lines"] = res["emitted_lines"] - user_lines
    shutil.rmtree(workdir, ignore_errors=True)
    ratios: dict[str, dict[str, float]] = {}
    for other in ("sdk", "sdk-sized"):
        for metric in ("mean_job_us", "cpu_per_job_us", "us_per_record"):
            pairs = []
            for r in range(repeats):
                a = next(x for x in runs if x["repeat"] == r and x["variant"] == "agent")
                b = next(x for x in runs if x["repeat"] == r and x["variant"] == other)
                pairs.append(a[metric] / b[metric])
            ratios[f"agent/{other} {metric}"] = u.spread(pairs)
    per_variant = {
        v: {m: u.spread([x[m] for x in runs if x["variant"] == v])
            for m in ("mean_job_us", "median_job_us", "cpu_per_job_us", "flush_s",
                      "user_lines_lost", "records_per_job", "us_per_record")}
        for v in VARIANTS
    }  # fmt: skip
    return {
        "config": {
            "repeats": repeats,
            "jobs_per_run": jobs,
            "steps": 10,
            "lines_per_job": 100,
            "burst_rate": 10_000,
            "burst_s": burst_s,
        },  # fmt: skip
        "runs": runs,
        "per_variant": per_variant,
        "ratios": ratios,
        "bursts": bursts,
        "profile": {"jobs": jobs, "loop_s": prof["loop_s"], "top_by_own_time": prof["profile"]},
    }


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    """Table rows."""
    out = []
    pv = result["per_variant"]
    for v in VARIANTS:
        out.append(("agent", f"{v}: µs per job (wall, 10 steps, 100 lines)",
                    u.fmt_spread(pv[v]["mean_job_us"])))  # fmt: skip
        out.append(("agent", f"{v}: CPU µs per job (all threads)",
                    u.fmt_spread(pv[v]["cpu_per_job_us"])))  # fmt: skip
        out.append(("agent", f"{v}: records per job (spans + log records)",
                    u.fmt_spread(pv[v]["records_per_job"])))  # fmt: skip
    for key, s in result["ratios"].items():
        out.append(
            (
                "agent",
                key.replace("mean_job_us", "wall per job")
                .replace("cpu_per_job_us", "CPU per job")
                .replace("us_per_record", "wall per record handed to the SDK"),
                u.fmt_spread(s, 2) + (" ✓" if s["median"] <= 1.2 else " ✗ (target 1.2)"),
            )
        )
    for v in ("sdk", "sdk-sized"):
        lost = pv[v]["user_lines_lost"]
        out.append(("agent", f"{v}: lines lost in the overhead runs (per run)",
                    u.fmt_spread(lost)))  # fmt: skip
    for b in result["bursts"]:
        extra = ""
        if b["variant"] == "agent":
            st = b.get("agent_stats", {})
            extra = f"; agent_stats logs_dropped={st.get('logs_dropped')}"
        out.append(("agent burst", f"{b['variant']}: lines lost at {b['achieved_rate']:,.0f}/s",
                    f"{b['lost_lines']:,} of {b['emitted_lines']:,}{extra}"))  # fmt: skip
    return out


def profile_text(result: dict[str, Any]) -> str:
    """The agent's cProfile top 20 as a Markdown table."""
    prof = result.get("profile")
    if not prof:
        return ""
    per_job = 1e6 / prof["jobs"]
    rows_ = [
        (f"{own * per_job:,.0f}", f"{cum * per_job:,.0f}", f"{calls / prof['jobs']:,.0f}", fn)
        for fn, own, cum, calls in prof["top_by_own_time"]
    ]
    head = (
        f"Agent job loop under cProfile (application thread; {prof['jobs']} jobs of 10 steps x "
        f"10 lines; cProfile inflates absolute times, read the shares):\n\n"
    )
    return head + u.table(rows_, ("own µs/job", "cum µs/job", "calls/job", "function"))
