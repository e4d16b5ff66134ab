"""Live tail: a running job's logs and progress appear without reload; autoscroll follows,
pauses when the user scrolls up and resumes at the bottom (seed 004)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from e2e.harness import ServerProcess
from playwright.sync_api import Page, expect

from web.pages import run_web_app, start_web_app, wait_until

pytestmark = pytest.mark.e2e

AT_BOTTOM = "el => el.scrollHeight - el.scrollTop - el.clientHeight <= 30"


def _count_grows(page: Page, selector: str, by: int = 3, timeout_s: float = 10) -> int:
    before = page.locator(selector).count()
    wait_until(
        lambda: page.locator(selector).count() >= before + by, timeout_s, f"{by} more {selector}"
    )
    return page.locator(selector).count()


def test_running_job_is_tailed_live_with_autoscroll(
    page: Page, web_server: ServerProcess, tmp_path: Path
) -> None:
    page.goto(f"{web_server.api}/#/jobs")
    expect(page.get_by_text("No jobs yet")).to_be_visible()
    app = start_web_app(web_server, "live_job", str(tmp_path))
    try:
        wait_until(lambda: (tmp_path / "job_id").exists(), 20, "the live job to start")
        job_id = (tmp_path / "job_id").read_text()

        # The list picks the running job up by itself, with a progress bar.
        row = page.locator(f'tr.job-row[data-job-id="{job_id}"]')
        expect(row).to_have_attribute("data-status", "running", timeout=15_000)
        expect(row.get_by_role("progressbar")).to_be_visible()
        row.get_by_role("link", name="live import").click()

        expect(page.locator(".page-header .badge")).to_have_text("running")
        scroller = page.locator(".log-scroll")
        follow = page.locator("input.follow")
        expect(page.locator(".log-row", has_text="burst line 39")).to_be_visible()

        # New lines and progress arrive without a reload, and the panel follows them.
        bar = page.locator(".job-progress [role=progressbar]")
        progress = int(bar.get_attribute("aria-valuenow") or 0)
        _count_grows(page, ".log-row")
        assert scroller.evaluate(AT_BOTTOM)
        expect(follow).to_be_checked()
        wait_until(lambda: int(bar.get_attribute("aria-valuenow") or 0) > progress, 10, "progress")

        # Scrolling up pauses autoscroll: lines keep coming, the view stays put.
        scroller.evaluate("el => { el.scrollTop = 0; }")
        expect(follow).not_to_be_checked()
        _count_grows(page, ".log-row")
        assert scroller.evaluate("el => el.scrollTop") == 0
        expect(page.locator(".jump")).to_contain_text("new line")

        # Back at the bottom it resumes.
        scroller.evaluate("el => { el.scrollTop = el.scrollHeight; }")
        expect(follow).to_be_checked()
        expect(page.locator(".jump")).to_be_hidden()
        _count_grows(page, ".log-row")
        assert scroller.evaluate(AT_BOTTOM)

        # Unticking "Follow" pauses too; ticking it jumps to the newest line.
        follow.uncheck()
        _count_grows(page, ".log-row", by=2)
        follow.check()
        assert scroller.evaluate(AT_BOTTOM)

        # The job ends: status, steps and the last line show up without a reload.
        (tmp_path / "stop").touch()
        expect(page.locator(".page-header .badge")).to_have_text("completed", timeout=15_000)
        expect(page.locator(".log-row", has_text="all done")).to_be_visible()
        expect(page.locator(".step .step-name")).to_have_text(["stream", "finish"])
        expect(page.locator(".live-indicator")).to_have_text("Finished")
    finally:
        (tmp_path / "stop").touch()
        try:
            app.wait(20)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()
        if app.stdout:
            app.stdout.close()
        if app.stderr:
            app.stderr.close()
    assert app.returncode == 0


@pytest.mark.parametrize("transport", ["stream", "polling"])
def test_logs_page_tails_new_records(page: Page, web_server: ServerProcess, transport: str) -> None:
    """The logs page follows new records, over SSE or (stream blocked) by polling."""
    if transport == "polling":
        page.route("**/api/logs/stream*", lambda route: route.abort())
    page.goto(f"{web_server.api}/#/logs?type=system&category=web.tail")
    indicator = page.locator(".live-indicator")
    expect(indicator).to_have_attribute(
        "data-state", "live" if transport == "stream" else "polling"
    )
    message = f"tailed over {transport}"
    run_web_app(web_server, "app_log", message)
    expect(page.locator(".log-row", has_text=message)).to_be_visible()
    page.wait_for_timeout(1200)  # another poll or stream event must not repeat it
    expect(page.locator(".log-row", has_text=message)).to_have_count(1)
