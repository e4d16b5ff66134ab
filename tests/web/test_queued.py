"""A queued job on the page: pending, when it was queued and how long it has waited; and
the logs of one run of a step that ran twice.

Its own module, so its own server: the other page modules wait for every job to finish.
"""

from __future__ import annotations

import json
import re

import pytest
from e2e.harness import ServerProcess
from playwright.sync_api import Page, expect

from web.pages import run_web_app

pytestmark = pytest.mark.e2e


def _fact(page: Page, label: str):  # noqa: ANN202 - a Playwright locator
    return page.locator(".facts div", has=page.locator("dt", has_text=label)).locator("dd")


def test_queued_jobs_show_their_wait(page: Page, web_server: ServerProcess) -> None:
    ids = json.loads(web_server.run_app("queued_jobs", "produce").strip().splitlines()[-1])
    # Lifecycle records at once (no heartbeat thread), so the progress update is sent.
    web_server.run_app(
        "queued_jobs", "work", ids["taken"], env={"JOBTRAIL_HEARTBEAT_INTERVAL_S": "0"}
    )
    web_server.wait_for(f"/api/jobs/{ids['taken']}", lambda j: j["status"] == "completed")
    web_server.wait_for(f"/api/jobs/{ids['waiting']}", lambda j: j["queued_at"] is not None)

    page.goto(f"{web_server.api}/#/jobs/{ids['waiting']}")
    expect(page.locator("h1")).to_have_text("export us")
    expect(page.locator(".page-header .badge")).to_have_text("pending")
    expect(_fact(page, "Queued")).to_contain_text("(waiting ")
    expect(_fact(page, "Started")).to_have_text("not yet: waiting in its queue")
    expect(_fact(page, "Ended")).to_have_count(0)

    page.goto(f"{web_server.api}/#/jobs/{ids['taken']}")
    expect(page.locator("h1")).to_have_text("export eu")
    expect(_fact(page, "Queued")).to_contain_text("(waited ")
    # Progress updates are lifecycle records: hidden from the log unless asked for.
    rows = page.locator(".log-row")
    expect(rows).to_have_count(1)
    page.get_by_label("Progress updates").check()
    expect(rows.filter(has_text="progress 50%: halfway")).to_have_count(1)
    assert "events=true" in page.url

    page.goto(f"{web_server.api}/#/jobs?status=pending")
    rows = page.locator("tr.job-row")
    expect(rows).to_have_count(1)
    expect(rows.locator(".col-started")).to_contain_text("queued ")


def test_a_step_that_ran_twice_shows_each_runs_logs(page: Page, web_server: ServerProcess) -> None:
    job_id = run_web_app(web_server, "step_runs_app")["job"]
    web_server.wait_for(f"/api/jobs/{job_id}", lambda j: j["status"] == "completed")
    page.goto(f"{web_server.api}/#/jobs/{job_id}")
    rows = page.locator(".log-row")
    expect(rows).to_have_count(3)
    page.locator(".step .step-name", has_text="upload").nth(1).click()
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("upload attempt 2")
    assert "span_id=" in page.url
    expect(page.get_by_label("Filter by step")).to_have_value(re.compile(r"^run:[0-9a-f]{16}$"))
    page.get_by_label("Filter by step").select_option(label="upload")  # every run of it
    expect(rows).to_have_count(2)
    page.locator(".step .step-name", has_text="notify").click()  # ran once: by name
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("notified")
    assert "step=notify" in page.url and "span_id=" not in page.url
