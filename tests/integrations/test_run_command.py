"""``jobtrail run -- CMD``: a real wrapper process, a real child, a real server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from e2e.harness import ServerProcess
from integration_support import APPS, all_logs, app_env, jobtrail_run, only_job

PY = sys.executable


def test_output_is_echoed_unchanged_and_recorded(server: ServerProcess) -> None:
    script = (
        "echo 'plain line'; "
        "echo 'WARN: disk 91% full' >&2; "
        "echo '2024-05-01 12:00:00,123 ERROR db timeout'; "
        "echo '[debug] cache miss'; "
        'echo \'{"level": "error", "msg": "json line", "rows": 3, "tags": ["a"]}\'; '
        'echo \'{"message": "structured", "user": "ann"}\' >&2; '
        "printf 'no newline at end'"
    )
    done = jobtrail_run(server, ["--type", "run-ok", "--name", "echo things", "--attr", "team=ops"], ["sh", "-c", script])
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        b"plain line\n2024-05-01 12:00:00,123 ERROR db timeout\n[debug] cache miss\n"
        b'{"level": "error", "msg": "json line", "rows": 3, "tags": ["a"]}\n'
        b"no newline at end"
    )
    assert done.stderr == b'WARN: disk 91% full\n{"message": "structured", "user": "ann"}\n'

    job = only_job(server, "run-ok", "completed")
    assert job["name"] == "echo things"
    assert job["attributes"]["team"] == "ops"
    assert job["attributes"]["command"].startswith("sh -c ")
    assert job["result"] == {"exit_code": 0}
    logs = server.wait_for(f"/api/jobs/{job['id']}/logs", lambda b: len(b["logs"]) == 7)["logs"]
    seen = {(e["message"], e["iostream"], e["level"]) for e in logs}
    assert seen == {
        ("plain line", "stdout", "info"),
        ("WARN: disk 91% full", "stderr", "warn"),
        ("2024-05-01 12:00:00,123 ERROR db timeout", "stdout", "error"),
        ("[debug] cache miss", "stdout", "debug"),
        ("json line", "stdout", "error"),
        ("structured", "stderr", "info"),
        ("no newline at end", "stdout", "info"),
    }
    by_message = {e["message"]: e for e in logs}
    assert by_message["json line"]["data"] == {"rows": 3, "tags": '["a"]'}
    assert by_message["structured"]["data"] == {"user": "ann"}
    assert all(e["job_id"] == job["id"] and e["trace_id"] == job["trace_id"] for e in logs)
    stdout_order = [e["message"] for e in logs if e["iostream"] == "stdout"]
    assert stdout_order[0] == "plain line" and stdout_order[-1] == "no newline at end"


def test_exit_code_fails_the_job_and_is_passed_on(server: ServerProcess) -> None:
    done = jobtrail_run(server, ["--type", "run-exit"], ["sh", "-c", "echo 'oops' >&2; exit 3"])
    assert done.returncode == 3 and done.stderr == b"oops\n"
    job = only_job(server, "run-exit", "failed")
    assert job["error"] == "exit code 3"
    assert job["result"] == {"exit_code": 3}
    logs = server.get(f"/api/jobs/{job['id']}/logs")["logs"]
    assert ("oops", "stderr") in {(e["message"], e["iostream"]) for e in logs}


def test_child_killed_by_a_signal(server: ServerProcess) -> None:
    done = jobtrail_run(server, ["--type", "run-killed"], ["sh", "-c", "kill -KILL $$"])
    assert done.returncode == 128 + signal.SIGKILL
    job = only_job(server, "run-killed", "failed")
    assert job["error"] == "killed by SIGKILL"


def test_missing_program(server: ServerProcess) -> None:
    done = jobtrail_run(server, ["--type", "run-missing"], ["/nonexistent/program"])
    assert done.returncode == 127
    assert b"cannot run '/nonexistent/program'" in done.stderr
    job = only_job(server, "run-missing", "failed")
    assert "cannot run" in job["error"]


def test_sigterm_is_forwarded_and_cancels(server: ServerProcess) -> None:
    wrapper = subprocess.Popen(
        [PY, "-m", "jobtrail", "run", "--type", "run-term", "--", PY, str(APPS / "run_sleeper.py")],
        env=app_env(server, "run"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert wrapper.stdout is not None
        assert wrapper.stdout.readline() == b"ready\n"
        job = only_job(server, "run-term", "running")
        wrapper.send_signal(signal.SIGTERM)
        out, err = wrapper.communicate(timeout=30)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
    assert wrapper.returncode == 128 + signal.SIGTERM
    assert err == b"sleeping\n"
    job = server.wait_for(f"/api/jobs/{job['id']}", lambda j: j["status"] == "cancelled")
    assert job["cancel_reason"] == "received SIGTERM"


def test_child_using_the_agent_becomes_a_child_job(server: ServerProcess) -> None:
    done = jobtrail_run(
        server, ["--type", "run-parent", "--name", "wrapper"], [PY, str(APPS / "run_child_agent.py")]
    )
    assert done.returncode == 0, done.stderr
    child_id = done.stdout.decode().strip().splitlines()[-1]
    parent = only_job(server, "run-parent", "completed")
    child = server.wait_for(f"/api/jobs/{child_id}", lambda j: j["status"] == "completed")
    assert child["parent_job_id"] == parent["id"]
    assert child["trace_id"] == parent["trace_id"]
    assert [s["name"] for s in child["steps"]] == ["compute"]
    parent = server.wait_for(f"/api/jobs/{parent['id']}", lambda j: j["children"])
    assert [c["id"] for c in parent["children"]] == [child_id]
    child_logs = {e["message"]: e for e in server.get(f"/api/jobs/{child_id}/logs")["logs"]}
    assert child_logs["computing inside the child"]["step"] == "compute"
    assert child_logs["stdlib warning inside the child job"]["level"] == "warn"
    # The child's stdout went through the wrapper: a line of the parent job.
    parent_logs = server.get(f"/api/jobs/{parent['id']}/logs")["logs"]
    assert [e["message"] for e in parent_logs if e["iostream"] == "stdout"] == [child_id]
    spans = server.get(f"/api/traces/{parent['trace_id']}")["spans"]
    by_id = {s["span_id"]: s for s in spans}
    assert by_id[child["span_id"]]["parent_span_id"] == parent["span_id"]


def test_a_very_chatty_child_loses_no_line(server: ServerProcess) -> None:
    count = 100_000
    program = (
        "import sys\n"
        f"for i in range({count}):\n"
        "    print(f'line {i}', file=sys.stderr if i % 10 == 0 else sys.stdout)\n"
    )
    started = time.monotonic()
    done = jobtrail_run(server, ["--type", "run-chatty"], [PY, "-c", program], timeout=80)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count(b"\n") == count * 9 // 10
    assert done.stderr.count(b"\n") == count // 10
    job = only_job(server, "run-chatty", "completed")
    logs = all_logs(server, job["id"])
    assert len(logs) == count, (len(logs), elapsed)
    numbers = [int(e["message"].split()[1]) for e in logs if e["iostream"] == "stdout"]
    assert numbers == [i for i in range(count) if i % 10]  # in order within a stream
    assert json.dumps(job["result"]) == '{"exit_code": 0}'
