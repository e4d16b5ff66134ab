"""The stats job filters (``type``, ``owner``, ``service``) and the ``span_id`` log filter.

Over a database fed through the real decoder and writer (see ``step_runs``): a job that runs
its step ``fetch`` twice, one of whose records comes from a plain span inside the second run
and is linked through the span tree, and a failed job of another owner and service.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from step_runs import StepRuns, step_runs, store_all

from jobtrail.api import Broker, create_app
from jobtrail.storage import Database

Client = TestClient[web.Request, web.Application]

RUN1 = ["fetching page 1", "page 1 slow"]
RUN2 = ["fetching page 2", "GET /page/2 retried"]


@pytest.fixture
def runs() -> StepRuns:
    return step_runs()


@pytest.fixture
async def fed(tmp_path: Path, runs: StepRuns) -> AsyncIterator[Database]:
    db = Database(tmp_path / "db.duckdb")
    await store_all(db, runs.requests)
    yield db
    db.close()


@pytest.fixture
async def api(fed: Database, aiohttp_client: AiohttpClient) -> Client:
    """The API with its live streams (a broker no writer feeds: streams replay only)."""
    return await aiohttp_client(create_app(fed, broker=Broker(fed)))


async def get(client: Client, path: str, expect: int = 200, /, **params: Any) -> Any:
    response = await client.get(path, params={k: str(v) for k, v in params.items()})
    assert response.status == expect, await response.text()
    return await response.json()


def messages(page: dict[str, Any]) -> list[str]:
    return [e["message"] for e in page["logs"]]


# --- span_id --------------------------------------------------------------------------------


async def test_job_detail_steps_carry_their_span_ids(api: Client, runs: StepRuns) -> None:
    job = await get(api, f"/api/jobs/{runs.job_id}")
    assert [(s["seq"], s["name"], s["span_id"]) for s in job["steps"]] == [
        (1, "fetch", runs.run1),
        (2, "fetch", runs.run2),
    ]


async def test_span_id_picks_one_run_of_a_step(api: Client, runs: StepRuns) -> None:
    path = f"/api/jobs/{runs.job_id}/logs"
    assert messages(await get(api, path, step="fetch")) == RUN1 + RUN2  # both runs merged
    first = await get(api, path, span_id=runs.run1)
    assert messages(first) == RUN1
    assert {(e["step"], e["step_span_id"]) for e in first["logs"]} == {("fetch", runs.run1)}
    second = await get(api, path, span_id=runs.run2.upper())  # any case
    assert messages(second) == RUN2  # the record of the span inside the run included
    assert [e["span_id"] for e in second["logs"]] == [runs.run2, runs.http]
    # A log row's own span: the records logged right in it.
    assert messages(await get(api, path, span_id=runs.http)) == ["GET /page/2 retried"]
    assert messages(await get(api, path, span_id=runs.job_span)) == ["listing pages"]
    # Combined with the other filters, and with polling.
    assert messages(await get(api, path, span_id=runs.run1, level="warn")) == ["page 1 slow"]
    assert messages(await get(api, path, span_id=runs.run2, step="fetch")) == RUN2
    page = await get(api, path, span_id=runs.run1, limit=1)
    rest = await get(api, path, span_id=runs.run1, after_id=page["next_after_id"])
    assert messages(page) + messages(rest) == RUN1
    with_events = await get(api, path, span_id=runs.job_span, events="true")
    assert messages(with_events) == ["job started", "listing pages"]
    assert (await get(api, path, span_id="0123456789abcdef"))["logs"] == []


async def test_span_id_on_all_logs_and_downloads(api: Client, runs: StepRuns) -> None:
    assert messages(await get(api, "/api/logs", span_id=runs.run2)) == RUN2
    assert messages(await get(api, "/api/logs", span_id=runs.run1, type="step")) == RUN1
    response = await api.get(
        f"/api/jobs/{runs.job_id}/logs", params={"span_id": runs.run1, "format": "jsonl"}
    )
    assert response.status == 200
    lines = [json.loads(line) for line in (await response.text()).splitlines()]
    assert [e["message"] for e in lines] == RUN1


async def test_job_stream_replays_one_run(api: Client, runs: StepRuns) -> None:
    """The job is over: the stream replays the matching records, the job, then ends."""
    response = await api.get(f"/api/jobs/{runs.job_id}/stream", params={"span_id": runs.run2})
    assert response.status == 200
    body = await asyncio.wait_for(response.text(), timeout=10)
    events = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    assert [data["message"] for kind, data in events if kind == "log"] == RUN2
    assert [kind for kind, _ in events][-2:] == ["job", "end"]


@pytest.mark.parametrize(
    "path",
    ["/api/jobs/{id}/logs", "/api/logs", "/api/jobs/{id}/stream", "/api/logs/stream",
     "/api/jobs/{id}/ws", "/api/logs/ws"],
)  # fmt: skip
@pytest.mark.parametrize("value", ["xyz", "0123456789abcde", "0123456789abcdef0", "g" * 16])
async def test_a_bad_span_id_is_a_400_naming_it(
    api: Client, runs: StepRuns, path: str, value: str
) -> None:
    body = await get(api, path.format(id=runs.job_id), 400, span_id=value)
    assert body["error"]["parameter"] == "span_id"
    assert body["error"]["message"].startswith("span_id: ")
    assert "16 hex digits" in body["error"]["message"]  # checked, not an unknown parameter


# --- stats: type, owner, service ------------------------------------------------------------


def summary(stats: dict[str, Any]) -> tuple[Any, ...]:
    jobs, logs = stats["jobs"], stats["logs"]
    errors = [e["id"] for e in stats["recent_errors"]]
    return jobs["by_status"], logs["by_level"], logs["by_category"], errors


async def test_stats_by_owner_and_service(api: Client, runs: StepRuns) -> None:
    both = ({"completed": 1, "failed": 1}, {"info": 3, "warn": 2, "error": 1}, {"db": 1},
            [runs.other_id])  # fmt: skip
    first = ({"completed": 1}, {"info": 3, "warn": 2}, {}, [])
    other = ({"failed": 1}, {"error": 1}, {"db": 1}, [runs.other_id])
    nothing = ({}, {}, {}, [])
    for params, expected in [
        ({"type": runs.type}, both),
        ({"owner": runs.owner}, first),
        ({"owner": runs.other_owner}, other),
        # The jobs' service: the service's record of no job ("scheduler tick") is not counted.
        ({"service": runs.service}, first),
        ({"service": runs.other_service}, other),
        ({"type": runs.type, "owner": runs.owner, "service": runs.service}, first),
        ({"owner": runs.owner, "service": runs.other_service}, nothing),
        ({"owner": "nobody"}, nothing),
    ]:
        stats = await get(api, "/api/stats", **params)
        assert summary(stats) == expected, params
    one = (await get(api, "/api/stats", owner=runs.other_owner))["jobs"]
    assert one["total"] == 1 and one["success_rate"] == 0.0
    assert one["duration_ms"]["p50"] == pytest.approx(20.0)
    everything = await get(api, "/api/stats")
    assert everything["logs"]["total"] == 7  # with the record of no job
    assert everything["jobs"]["total"] == 2


async def test_stats_filters_by_owner_and_service_on_the_sample(client: Client) -> None:
    """The shared sample database (``client`` of conftest): owners ann, bob, mailer."""
    ann = await get(client, "/api/stats", owner="ann")
    assert ann["jobs"]["by_status"] == {"cancelled": 1, "completed": 2}
    assert ann["logs"]["by_level"] == {"debug": 4, "info": 12, "success": 1, "warn": 2}
    assert ann["logs"]["by_category"] == {} and ann["recent_errors"] == []
    worker_b = await get(client, "/api/stats", service="worker-b", since="2026-11-21")
    assert worker_b["jobs"]["by_status"] == {"completed": 24, "failed": 7}
    assert worker_b["logs"] == {"total": 2, "by_level": {"info": 1, "error": 1},
                                "by_category": {"exporter": 2}}  # fmt: skip
    assert worker_b["recent_errors"][0]["id"] == "export-1"
    mailer = await get(
        client, "/api/stats", owner="mailer", service="worker-b", since="2026-11-21",
        until="2026-11-22", bucket="1d",
    )  # fmt: skip
    assert [(b["total"], b["failed"]) for b in mailer["buckets"]] == [(30, 6)]


async def test_stats_unknown_parameter_still_a_400(client: Client) -> None:
    body = await get(client, "/api/stats", 400, owner="ann", ownr="ann")
    assert body["error"]["parameter"] == "ownr"
    assert "owner" in body["error"]["message"] and "service" in body["error"]["message"]
