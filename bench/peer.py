"""4. Against a peer: the same job through Prefect 3 and through jobtrail.

The job is the agent benchmark's (:mod:`bench._agent_app`): 10 steps in turn, 10 log lines
each. jobtrail records it with its agent (defaults) against ``jobtrail serve``; Prefect 3
as a ``@flow`` calling 10 ``@task`` s that log through ``get_run_logger()``
(:mod:`bench._prefect_app`) against a ``prefect server start`` this module starts itself
(SQLite, ``PREFECT_HOME`` in a temporary folder), everything else at Prefect's defaults.

Per repeat the two apps run in turn, each a fresh process running ``--jobs`` jobs after 2
warm-up jobs, so ratios are taken pair by pair on the same machine state. Per job an app
times the job's call (wall), then polls its server's API every 10 ms until the whole job
is queryable: jobtrail's ``GET /api/jobs/{id}`` finished with its 10 steps and
``GET /api/jobs/{id}/logs`` holding all 100 lines; Prefect's flow run COMPLETED with 10
COMPLETED task runs and all 100 lines (``/task_runs/filter``, ``/logs/filter``). That
end-to-end time runs from the job's start. Start-up (spawn to ready to run the first job)
is reported apart. Prefect's ephemeral mode (no server: it starts its own subprocess) is
timed once, wall only.

Prefect runs from ``BENCH_PREFECT_PYTHON`` when set (a venv where it installs), else from
this interpreter; without it the benchmark is skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench import _util as u

ROOT = Path(__file__).resolve().parent.parent
STEPS = 10
LINES = 100
LINE_PREFIX = "processed batch"
#: Jobs of the one ephemeral-mode run (after 1 warm-up job that also starts its server).
EPHEMERAL_JOBS = 5


# --- Prefect: where it is, its server ------------------------------------------------------


def prefect_python() -> tuple[str | None, str]:
    """(interpreter that imports prefect 3, version or the reason there is none)."""
    py = os.environ.get("BENCH_PREFECT_PYTHON") or sys.executable
    try:
        proc = subprocess.run(
            [py, "-c", "import prefect; print(prefect.__version__)"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    except OSError as exc:
        return None, f"cannot run {py}: {exc}"
    version = proc.stdout.strip()
    if proc.returncode != 0 or not version:
        return None, (
            f"prefect is not importable by {py}; install the bench extra "
            "(pip install -e '.[bench]') or set BENCH_PREFECT_PYTHON to a Python that has it"
        )
    if not version.startswith("3."):
        return None, f"{py} has prefect {version}, this benchmark needs 3.x"
    return py, version


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrefectServer:
    """``prefect server start`` on 127.0.0.1, its home and SQLite database in ``workdir``."""

    def __init__(self, python: str, workdir: Path) -> None:
        self.python, self.workdir = python, workdir
        self.home = workdir / "prefect-home"
        self.proc: subprocess.Popen[bytes] | None = None
        self.api = ""

    def env(self) -> dict[str, str]:
        """The environment of Prefect processes: this home, no telemetry."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env["PREFECT_HOME"] = str(self.home)
        env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
        return env

    def start(self, timeout_s: float = 180.0) -> float:
        """Start and wait for ``/api/health``; returns the seconds it took."""
        self.home.mkdir(parents=True, exist_ok=True)
        port = _free_port()  # the CLI needs a number; the race with another binder is small
        self._log = open(self.workdir / "prefect-server.log", "ab")  # noqa: SIM115 - stop()
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [self.python, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(port)],
            stdout=self._log, stderr=subprocess.STDOUT, env=self.env(),
            start_new_session=True,  # its uvicorn and services go with it on stop()
        )  # fmt: skip
        self.api = f"http://127.0.0.1:{port}/api"
        while time.monotonic() - t0 < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prefect server exited; see {self.workdir}/prefect-server.log")
            try:
                with urllib.request.urlopen(f"{self.api}/health", timeout=5) as r:  # noqa: S310
                    if r.status == 200:
                        return time.monotonic() - t0
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError("prefect server did not become healthy")

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass
        self._log.close()
        self.proc = None


# --- the two apps --------------------------------------------------------------------------


def _spawn(cmd: list[str], env: dict[str, str] | None, what: str) -> dict[str, Any]:
    cmd = [*cmd, "--spawned-at", repr(time.time())]
    proc = subprocess.run(cmd, capture_output=True, cwd=ROOT, env=env, timeout=300, check=False)
    lines = proc.stdout.decode().strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{what} app failed: {proc.stderr.decode()[-2000:]}")
    res: dict[str, Any] = json.loads(lines[-1])
    res["job_us_median"] = statistics.median(res["job_us"])
    res["job_us_mean"] = statistics.fmean(res["job_us"])
    res["cpu_per_job_us"] = statistics.median(res["job_cpu_us"])
    if res["e2e_ms"]:
        res["e2e_ms_median"] = statistics.median(res["e2e_ms"])
    return res


def _jobtrail(server: u.Server, jobs: int) -> dict[str, Any]:
    return _spawn(
        [sys.executable, "-m", "bench.peer", "--app", "--endpoint", server.grpc,
         "--api", server.api, "--jobs", str(jobs)],
        None, "jobtrail",
    )  # fmt: skip


def _prefect(python: str, env: dict[str, str], jobs: int, warmup: int = 2) -> dict[str, Any]:
    return _spawn([python, str(ROOT / "bench" / "_prefect_app.py"), "--jobs", str(jobs),
                   "--warmup", str(warmup)], env, "prefect")  # fmt: skip


def run(*, quick: bool = False, repeats: int | None = None) -> dict[str, Any]:
    """Pairs of (jobtrail, Prefect server) runs, then one Prefect ephemeral run."""
    python, version = prefect_python()
    if python is None:
        u.log(f"peer: skipped: {version}")
        return {"skipped": version}
    repeats = repeats or (1 if quick else 3)
    jobs = 5 if quick else 8
    workdir = Path(tempfile.mkdtemp(prefix="jobtrail-bench-peer-"))
    out: dict[str, Any] = {
        "config": {"repeats": repeats, "jobs_per_run": jobs, "warmup_jobs": 2, "steps": STEPS,
                   "lines_per_job": LINES, "poll_ms": 10, "prefect": version,
                   "prefect_python": python},
    }  # fmt: skip
    pf = PrefectServer(python, workdir)
    t = time.monotonic()
    server = u.Server(workdir / "jobtrail", workdir / "jobtrail" / "peer.duckdb").start()
    out["jobtrail_server_start_s"] = time.monotonic() - t
    runs: list[dict[str, Any]] = []
    try:
        u.log("peer: starting prefect server")
        out["prefect_server_start_s"] = pf.start()
        env = {**pf.env(), "PREFECT_API_URL": pf.api}
        for r in range(repeats):
            u.log(f"peer: repeat {r + 1}/{repeats} (jobtrail, then prefect; {jobs} jobs each)")
            for res in (_jobtrail(server, jobs), _prefect(python, env, jobs)):
                res["repeat"] = r
                runs.append(res)
    finally:
        server.stop()
        pf.stop()
    if not quick:  # its own server start costs ~15 s more
        eph_env = {**pf.env(), "PREFECT_HOME": str(workdir / "prefect-ephemeral"),
                   # The default 20 s is too short for its start on a loaded 2-core machine.
                   "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}  # fmt: skip
        u.log("peer: prefect ephemeral mode (no server; wall time only)")
        try:
            out["ephemeral"] = _prefect(python, eph_env, EPHEMERAL_JOBS, warmup=1)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            out["ephemeral"] = {"error": str(exc)[-500:]}
    shutil.rmtree(workdir, ignore_errors=True)
    out["runs"] = runs
    out["summary"] = _summary(runs, repeats)
    return out


def _summary(runs: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    def pick(variant: str) -> list[dict[str, Any]]:
        return [x for x in runs if x["variant"] == variant]

    metrics = ("job_us_median", "cpu_per_job_us", "e2e_ms_median", "startup_s")
    per_variant: dict[str, dict[str, Any]] = {}
    for v in ("jobtrail", "prefect-server"):
        values = {m: [x[m] for x in pick(v) if m in x] for m in metrics}
        # No e2e figure when every job of a run timed out: the row says so instead.
        per_variant[v] = {m: u.spread(vs) if vs else None for m, vs in values.items()}
    for v in per_variant:
        every = [e for x in pick(v) for e in x["e2e_ms"]]
        per_variant[v]["e2e_ms_p95_all"] = u.percentile(every, 0.95) if every else None
        per_variant[v]["e2e_timeouts"] = sum(x["e2e_timeouts"] for x in pick(v))
    ratios = {}
    for m in metrics:
        pairs = []
        for r in range(repeats):
            a = next(x for x in runs if x["repeat"] == r and x["variant"] == "jobtrail")
            b = next(x for x in runs if x["repeat"] == r and x["variant"] == "prefect-server")
            if m in a and m in b:
                pairs.append(b[m] / a[m])
        if pairs:
            ratios[f"prefect/jobtrail {m}"] = u.spread(pairs)
    return {"per_variant": per_variant, "ratios": ratios}


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    """Table rows."""
    if "skipped" in result:
        return [("peer", "skipped", result["skipped"])]
    pv, ra = result["summary"]["per_variant"], result["summary"]["ratios"]
    out: list[tuple[str, ...]] = []
    names = {"jobtrail": "jobtrail", "prefect-server": "prefect (server)"}
    for v, name in names.items():
        out.append(("peer", f"{name}: µs per job (wall, 10 steps, 100 lines)",
                    u.fmt_spread(pv[v]["job_us_median"])))  # fmt: skip
        out.append(("peer", f"{name}: CPU µs in the job call (app, all threads)",
                    u.fmt_spread(pv[v]["cpu_per_job_us"])))  # fmt: skip
        p95, lost = pv[v]["e2e_ms_p95_all"], pv[v]["e2e_timeouts"]
        e2e = u.fmt_spread(pv[v]["e2e_ms_median"]) if pv[v]["e2e_ms_median"] else "none"
        e2e += f"; p95 {p95:,.0f}" if p95 else ""
        out.append(("peer", f"{name}: ms from job start until job + logs queryable",
                    e2e + (f"; {lost} timeouts" if lost else "")))  # fmt: skip
        out.append(("peer", f"{name}: app start-up s (spawn to ready)",
                    u.fmt_spread(pv[v]["startup_s"], 2)))  # fmt: skip
    eph = result.get("ephemeral", {})
    if "job_us" in eph:
        out.append(("peer", "prefect (ephemeral): µs per job (wall)",
                    f"{statistics.median(eph['job_us']):,.0f} "
                    f"(first job incl. its server start {eph['first_job_s']:.1f} s)"))  # fmt: skip
    elif eph:
        out.append(("peer", "prefect (ephemeral)", f"failed: {eph.get('error', '')[:80]}"))
    else:
        out.append(("peer", "prefect (ephemeral)", "not run with --quick"))
    out.append(("peer", "server start s (jobtrail / prefect)",
                f"{result['jobtrail_server_start_s']:.1f} / "
                f"{result['prefect_server_start_s']:.1f}"))  # fmt: skip
    labels = {"job_us_median": "wall per job", "cpu_per_job_us": "app CPU per job",
              "e2e_ms_median": "time until queryable", "startup_s": "app start-up"}  # fmt: skip
    for key, s in ra.items():
        m = key.split(" ", 1)[1]
        out.append(("peer", f"prefect/jobtrail {labels[m]}", u.fmt_spread(s, 2)))
    return out


# --- the jobtrail app (runs as ``python -m bench.peer --app``) ------------------------------


def _get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - loopback
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # not arrived yet
            return None
        raise


def _queryable(api: str, job_id: str) -> bool:
    job = _get_json(f"{api}/api/jobs/{job_id}")
    if not job or job.get("status") != "completed":
        return False
    steps = job.get("steps") or []
    if len(steps) != STEPS or any(s.get("status") != "completed" for s in steps):
        return False
    logs = (_get_json(f"{api}/api/jobs/{job_id}/logs?limit=1000") or {}).get("logs", [])
    return sum(1 for x in logs if str(x.get("message", "")).startswith(LINE_PREFIX)) == LINES


def _job(jobtrail: Any, n: int) -> str:
    """The job of :func:`bench._agent_app._agent_job`, returning its id to poll for."""
    with jobtrail.job(f"import {n}", type="import", owner="ann", total_steps=STEPS) as job:
        for s in range(STEPS):
            with job.step(f"step-{s}") as step:
                for i in range(LINES // STEPS):
                    step.info(f"{LINE_PREFIX} {i}", row=i, table="users")
    return str(job.id)


def _app_main(args: argparse.Namespace) -> None:
    t_import = time.time()
    import jobtrail

    jobtrail.configure(endpoint=args.endpoint, service_name="peer-jobtrail")
    out: dict[str, Any] = {"variant": "jobtrail", "jobs": args.jobs}
    out["import_s"] = time.time() - t_import
    out["startup_s"] = time.time() - args.spawned_at
    t = time.perf_counter()
    for n in range(2):  # warm: imports, first exports, caches
        _job(jobtrail, -n - 1)
    out["warmup_s"] = time.perf_counter() - t
    wall, cpu, e2e, polls, timeouts = [], [], [], [], 0
    t0 = time.perf_counter()
    for n in range(args.jobs):
        c, start = time.process_time(), time.perf_counter()
        job_id = _job(jobtrail, n)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - c)
        k, deadline = 0, start + args.e2e_timeout
        while True:
            k += 1
            if _queryable(args.api, job_id):
                e2e.append(time.perf_counter() - start)
                break
            if time.perf_counter() > deadline:
                timeouts += 1
                break
            time.sleep(args.poll_ms / 1000)
        polls.append(k)
    out["loop_s"] = time.perf_counter() - t0
    out["job_us"] = [x * 1e6 for x in wall]
    out["job_cpu_us"] = [x * 1e6 for x in cpu]
    out["e2e_ms"] = [x * 1e3 for x in e2e]
    out["polls"], out["e2e_timeouts"] = polls, timeouts
    jobtrail.shutdown()
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m bench.peer")
    ap.add_argument("--app", action="store_true", help="run the jobtrail app (one process)")
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--api", required=True)
    ap.add_argument("--jobs", type=int, default=10)
    ap.add_argument("--poll-ms", type=float, default=10.0)
    ap.add_argument("--e2e-timeout", type=float, default=30.0)
    ap.add_argument("--spawned-at", type=float, default=time.time())
    _app_main(ap.parse_args())
