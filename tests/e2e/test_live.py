"""Live jobs: SSE shows a running job as it runs; resume loses nothing; killed jobs get lost."""

from __future__ import annotations

import signal
import statistics
from pathlib import Path

from e2e.harness import ServerProcess
from e2e.sse import SseEvent, sse_events

STEPS, LINES = 3, 10


async def _collect(
    url: str, *, last_event_id: int | None = None, stop_after_logs: int | None = None
) -> list[SseEvent]:
    events: list[SseEvent] = []
    logs = 0
    async for event in sse_events(url, last_event_id=last_event_id, timeout_s=60):
        events.append(event)
        logs += event.event == "log"
        if event.event == "end" or (stop_after_logs is not None and logs >= stop_after_logs):
            break
    return events


async def test_sse_follows_a_running_job(server: ServerProcess) -> None:
    app = server.start_app("long_job", str(STEPS), str(LINES))
    assert app.stdout is not None
    job_id = app.stdout.readline().strip()
    server.wait_for(f"/api/jobs/{job_id}", lambda j: j["status"] == "running", timeout_s=10)
    events = await _collect(f"{server.api}/api/jobs/{job_id}/stream")
    assert app.wait(30) == 0

    logs = [e for e in events if e.event == "log"]
    assert [e.data["message"] for e in logs] == [
        f"line {s}.{i}" for s in range(STEPS) for i in range(LINES)
    ]
    ids = [e.id for e in events if e.id is not None]
    assert ids == sorted(ids), "event ids never go back"
    jobs = [e.data for e in events if e.event == "job"]
    assert jobs[0]["status"] == "running"
    assert jobs[-1]["status"] == "completed" and events[-1].event == "end"
    progress = [round(j["progress"] or 0) for j in jobs]
    for value in (33, 67, 100):
        assert value in progress, f"progress {value} never shown: {progress}"
    step_states = {(s["name"], s["status"]) for j in jobs for s in j["steps"]}
    for s in range(STEPS):
        assert (f"step {s}", "running") in step_states and (f"step {s}", "completed") in step_states
    delays = [e.received - e.data["data"]["sent_at"] for e in logs if e.received]
    live = delays[LINES:]  # the first lines may have been replayed on connect
    assert statistics.median(live) < 1.0, f"median delay {statistics.median(live):.2f} s"


async def test_last_event_id_resume_loses_and_repeats_nothing(server: ServerProcess) -> None:
    app = server.start_app("long_job", "2", "15")
    assert app.stdout is not None
    job_id = app.stdout.readline().strip()
    server.wait_for(f"/api/jobs/{job_id}", lambda j: j["status"] == "running", timeout_s=10)
    url = f"{server.api}/api/jobs/{job_id}/stream"
    first = await _collect(url, stop_after_logs=7)
    last_id = max(e.id for e in first if e.id is not None)
    rest = await _collect(url, last_event_id=last_id)
    assert app.wait(30) == 0
    messages = [e.data["message"] for e in first + rest if e.event == "log"]
    assert messages == [f"line {s}.{i}" for s in range(2) for i in range(15)]
    assert rest[-1].event == "end"


def test_killed_job_becomes_lost(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "jobtrail: {heartbeat_timeout: 2s}\n")
    server.start()
    try:
        app = server.start_app("long_job", "2", "3", "--hang")
        assert app.stdout is not None
        job_id = app.stdout.readline().strip()
        server.wait_for(f"/api/jobs/{job_id}", lambda j: j["status"] == "running", timeout_s=10)
        server.wait_for(
            f"/api/jobs/{job_id}", lambda j: j["current_step"] == "step 0", timeout_s=10
        )
        import time

        time.sleep(3)  # heartbeats keep it running while the process lives
        assert server.get(f"/api/jobs/{job_id}")["status"] == "running"
        app.send_signal(signal.SIGKILL)
        app.wait(10)
        job = server.wait_for(f"/api/jobs/{job_id}", lambda j: j["status"] == "lost", timeout_s=15)
        assert job["last_seen"] is not None
    finally:
        server.stop()


async def test_websocket_follows_a_job_and_the_jobs_list(server: ServerProcess) -> None:
    import aiohttp

    app = server.start_app("long_job", "1", "5")
    assert app.stdout is not None
    job_id = app.stdout.readline().strip()
    server.wait_for(f"/api/jobs/{job_id}", lambda j: j["status"] == "running", timeout_s=10)
    ws_base = server.api.replace("http://", "ws://")
    messages: list[dict[str, object]] = []
    job_events: list[dict[str, object]] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        async with (
            session.ws_connect(f"{ws_base}/api/jobs/ws") as jobs_ws,
            session.ws_connect(f"{ws_base}/api/jobs/{job_id}/ws?level=info") as job_ws,
        ):
            async for msg in job_ws:
                body = msg.json()
                messages.append(body)
                if body["event"] == "end":
                    break
            while True:
                body = await jobs_ws.receive_json(timeout=10)
                job_events.append(body)
                if body["data"]["id"] == job_id and body["data"]["status"] == "completed":
                    break
    assert app.wait(30) == 0
    logs = [m["data"]["message"] for m in messages if m["event"] == "log"]  # type: ignore[index]
    assert logs == [f"line 0.{i}" for i in range(5)]
    assert messages[-1] == {
        "event": "end",
        "id": messages[-1]["id"],
        "data": {"status": "completed"},
    }
    assert all(e["event"] == "job" for e in job_events)
