"""The page against a real server filled by the agent: list, detail, logs, trace, stats."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from e2e.harness import ServerProcess
from playwright.sync_api import Page, Route, expect

from web.pages import DESKTOP, NARROW, SHOTS

pytestmark = pytest.mark.e2e


def row(page: Page, job_id: str):  # noqa: ANN201 - a Playwright locator
    return page.locator(f'tr.job-row[data-job-id="{job_id}"]')


def test_jobs_list_shows_statuses_nesting_and_url_filters(
    page: Page, web_server: ServerProcess, jobs: dict[str, str]
) -> None:
    page.goto(f"{web_server.api}/#/jobs")
    expect(row(page, jobs["nightly import"])).to_have_attribute("data-status", "completed")
    expect(row(page, jobs["broken export"])).to_have_attribute("data-status", "failed")
    expect(row(page, jobs["quarterly report"])).to_have_attribute("data-status", "cancelled")
    expect(row(page, jobs["broken export"]).locator(".badge")).to_have_text("failed")
    expect(row(page, jobs["broken export"])).to_contain_text("disk full after 3 chunks")
    # Newest first.
    expect(page.locator("tr.job-row .job-link")).to_have_text(
        ["quarterly report", "broken export", "nightly import"]
    )
    # The child job is nested under its parent, shown on demand.
    expect(row(page, jobs["rebuild index"])).to_have_count(0)
    row(page, jobs["nightly import"]).get_by_role("button", name="1 child job").click()
    expect(row(page, jobs["rebuild index"])).to_have_class(re.compile(r"depth-1"))

    # Filters come from the URL...
    page.goto(f"{web_server.api}/#/jobs?status=failed")
    expect(page.locator("tr.job-row")).to_have_count(1)
    expect(row(page, jobs["broken export"])).to_be_visible()
    expect(page.get_by_label("Status")).to_have_value("failed")

    # ...and go back into it when changed in the form.
    page.goto(f"{web_server.api}/#/jobs")
    expect(page.locator("tr.job-row")).to_have_count(3)
    page.get_by_label("Type", exact=True).fill("index")
    expect(page.locator("tr.job-row")).to_have_count(1)
    expect(row(page, jobs["rebuild index"])).to_contain_text("child of")
    assert "type=index" in page.url
    page.get_by_label("Type", exact=True).fill("")
    page.get_by_label("Owner").fill("bob")
    expect(page.locator("tr.job-row")).to_have_count(2)
    assert "owner=bob" in page.url and "type=" not in page.url
    page.get_by_label("Search").fill("nothing-matches-this")
    expect(page.get_by_text("No jobs match these filters")).to_be_visible()


def test_failed_job_shows_steps_error_and_stack_trace(
    page: Page, web_server: ServerProcess, jobs: dict[str, str]
) -> None:
    page.goto(f"{web_server.api}/#/jobs/{jobs['broken export']}")
    expect(page.locator("h1")).to_have_text("broken export")
    expect(page.locator(".page-header .badge")).to_have_text("failed")
    expect(page.locator(".step .step-name")).to_have_text(["prepare", "write"])
    expect(page.locator(".step .badge")).to_have_text(["completed", "failed"])
    expect(page.locator(".error-message")).to_contain_text("disk full after 3 chunks")
    stack = page.locator(".error-box .stack-trace")
    expect(stack).to_have_count(0)
    toggle = page.get_by_role("button", name="Stack trace")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(stack).to_be_visible()
    expect(stack).to_contain_text("write_chunk")
    # The error log line expands to its own stack trace as well.
    error_row = page.locator(".log-row", has_text="job failed")
    error_row.get_by_role("button", name="Show details").click()
    expect(error_row.locator(".stack-trace")).to_contain_text("OSError")
    # The logs can be downloaded whole, as a file.
    link = page.get_by_role("link", name="Download")
    with page.expect_download() as download:
        link.click()
    saved = download.value
    assert saved.suggested_filename == f"job-{jobs['broken export']}-logs.txt"
    text = Path(saved.path()).read_text()
    assert "disk full after 3 chunks" in text and "OSError" in text


def test_log_panel_level_chips_search_and_step_filter(
    page: Page, web_server: ServerProcess, jobs: dict[str, str]
) -> None:
    job_id = jobs["nightly import"]
    detail = web_server.get(f"/api/jobs/{job_id}")
    page.goto(f"{web_server.api}/#/jobs/{job_id}")
    expect(page.locator(".step .step-name")).to_have_text(["download", "transform", "load"])
    expect(page.locator(".step .badge")).to_have_text(["completed", "completed", "skipped"])
    expect(page.locator(".step .step-note")).to_have_text(["Skipped: nothing to load"])
    expect(page.locator(".result-box")).to_contain_text('"rows": 300')
    expect(page.locator(".child-list")).to_contain_text("rebuild index")
    rows = page.locator(".log-row")
    expect(rows).to_have_count(sum(detail["log_counts"].values()))

    error_chip = page.locator('.chip[data-level="error"]')
    expect(error_chip).to_have_text(f"error {detail['log_counts']['error']}")
    error_chip.click()
    expect(error_chip).to_have_attribute("aria-pressed", "true")
    expect(rows).to_have_count(detail["log_counts"]["error"])
    for level in rows.evaluate_all("rows => rows.map(r => r.dataset.level)"):
        assert level == "error"
    assert "level=error" in page.url
    page.locator('.chip[data-level="fatal"]').click()
    expect(rows).to_have_count(detail["log_counts"]["error"] + detail["log_counts"]["fatal"])
    page.locator('.chip[data-level="error"]').click()
    page.locator('.chip[data-level="fatal"]').click()

    page.get_by_label("Search logs").fill("line 7")
    expect(rows).to_have_count(2)
    expect(rows.locator(".log-message")).to_have_text(["download line 7", "transform line 7"])
    assert "q=line" in page.url

    page.get_by_label("Search logs").fill("")
    page.get_by_label("Filter by step").select_option("transform")
    expect(rows).to_have_count(30)
    assert set(rows.locator(".step-tag").all_inner_texts()) == {"transform"}
    # Structured data expands.
    first = rows.first
    first.get_by_role("button", name="Show details").click()
    expect(first.locator(".log-data")).to_contain_text('"line": 0')


def test_trace_waterfall_shows_spans_and_attributes(
    page: Page, web_server: ServerProcess, jobs: dict[str, str]
) -> None:
    page.goto(f"{web_server.api}/#/jobs/{jobs['nightly import']}")
    page.get_by_role("link", name="Trace waterfall").click()
    spans = page.locator(".span-row")
    expect(spans.locator(".span-name")).to_have_text(
        ["nightly import", "download", "GET /exports/users.csv", "transform", "load",
         "rebuild index"]
    )  # fmt: skip
    expect(spans.nth(0)).to_have_class(re.compile("kind-job"))
    expect(spans.nth(1)).to_have_class(re.compile("kind-step"))
    http = spans.nth(2)
    expect(http).to_have_class(re.compile("kind-span"))
    # Nested under its step: indented further than the step.
    indent = spans.locator(".span-label").evaluate_all(
        "els => els.map(e => parseFloat(getComputedStyle(e).paddingInlineStart))"
    )
    assert indent[0] < indent[1] < indent[2]
    # Bars sit on one time axis: the step starts no earlier than the job.
    lefts = spans.locator(".span-bar").evaluate_all("els => els.map(e => parseFloat(e.style.left))")
    assert lefts[0] == 0 and all(x >= 0 for x in lefts)
    http.click()
    detail = page.locator(".span-detail")
    expect(detail).to_contain_text("http.request.method")
    expect(detail).to_contain_text("https://files.test/users.csv")
    page.get_by_role("link", name="← Job").click()
    expect(page.locator("h1")).to_have_text("nightly import")


def test_stats_page_renders_the_api_numbers(
    page: Page, web_server: ServerProcess, jobs: dict[str, str]
) -> None:
    stats = web_server.get("/api/stats", since="24h")
    page.goto(f"{web_server.api}/#/stats")
    expect(page.locator('[data-stat="total"] .card-value')).to_have_text(
        str(stats["jobs"]["total"])
    )
    expect(page.locator('[data-stat="failed"] .card-value')).to_have_text("1")
    rate = stats["jobs"]["success_rate"] * 100
    expect(page.locator('[data-stat="success_rate"] .card-value')).to_have_text(f"{rate:.1f}%")
    export = page.locator('.type-table tr[data-type="export"]')
    expect(export.locator("td").nth(0)).to_have_text("1")
    expect(export.locator("td").nth(2)).to_have_text("1")
    expect(export.locator("td").nth(4)).not_to_have_text("…")  # p50 per type filled in
    expect(page.locator("svg.chart rect.bar-failed")).to_have_count(1)
    assert page.locator("svg.chart rect.bar-completed").count() >= 1
    expect(page.locator(".recent-errors a")).to_have_text(["broken export"])

    fatal = stats["logs"]["by_level"]["fatal"]
    expect(page.locator('[data-panel="levels"] li[data-key="fatal"] .count-value')).to_have_text(
        str(fatal)
    )
    expect(page.locator('[data-panel="categories"]')).to_contain_text("billing.scheduler")
    page.locator(".recent-errors a").click()
    expect(page.locator("h1")).to_have_text("broken export")

    # One owner's jobs (seed 000's per-project stats): the API's numbers for that owner.
    ann = web_server.get("/api/stats", since="24h", owner="ann")
    assert 0 < ann["jobs"]["total"] < stats["jobs"]["total"]
    page.goto(f"{web_server.api}/#/stats")
    page.get_by_label("Only the jobs of this owner").fill("ann")
    page.get_by_label("Only the jobs of this owner").press("Enter")
    expect(page.locator('[data-stat="total"] .card-value')).to_have_text(str(ann["jobs"]["total"]))
    assert "owner=ann" in page.url


def test_logs_page_filters_system_logs(
    page: Page, web_server: ServerProcess, jobs: dict[str, str]
) -> None:
    page.goto(f"{web_server.api}/#/logs?type=system")
    rows = page.locator(".log-row")
    expect(rows.filter(has_text="scheduler started without a lock file")).to_have_count(1)
    expect(rows.locator(".job-tag")).to_have_count(0)
    page.locator('.chip[data-level="error"]').click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("nightly billing run skipped")
    expect(rows.first).to_contain_text("billing.scheduler")

    page.goto(f"{web_server.api}/#/logs?type=step&level=fatal")
    expect(rows).to_have_count(10)
    rows.first.locator(".job-tag").click()
    expect(page.locator("h1")).to_have_text("nightly import")


def test_missing_job_and_server_down_states(page: Page, web_server: ServerProcess) -> None:
    page.goto(f"{web_server.api}/#/jobs/no-such-job")
    expect(page.get_by_role("alert")).to_contain_text("Job not found")
    page.get_by_role("link", name="Back to the jobs list").click()
    expect(page.locator("tr.job-row").first).to_be_visible()

    page.route("**/api/**", lambda route: route.abort())
    page.goto(f"{web_server.api}/#/stats")
    expect(page.get_by_role("alert")).to_contain_text("not answering")
    page.unroute("**/api/**")
    page.get_by_role("button", name="Retry").click()
    expect(page.locator('[data-stat="total"]')).to_be_visible()


def test_keyboard_navigation(page: Page, web_server: ServerProcess, jobs: dict[str, str]) -> None:
    page.goto(f"{web_server.api}/#/jobs")
    expect(page.locator("tr.job-row").first).to_be_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('job-link')"):
            break
    else:
        raise AssertionError("no job link reachable with Tab")
    # Hold the job's logs so the page is shown but still loading when the user moves on:
    # focus they give the new page must survive the view finishing its load.
    held: list[Route] = []
    job_logs = re.compile(r"/api/logs\?.*\bjob=")
    page.route(job_logs, lambda route: held.append(route))
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("quarterly report")
    chip = page.locator('.chip[data-level="info"]')
    chip.focus()
    for _ in range(50):
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the job page never asked for its logs"
    for route in held:
        route.continue_()
    page.unroute(job_logs)
    expect(page.locator(".log-list li, .log-empty:not([hidden])").first).to_be_visible()
    page.wait_for_timeout(200)  # the view's load has settled
    page.keyboard.press("Space")
    expect(chip).to_have_attribute("aria-pressed", "true")


PAGES = {
    "jobs": ("#/jobs", "tr.job-row"),
    "job-failed": ("#/jobs/{broken export}", ".log-row"),
    "job": ("#/jobs/{nightly import}", ".log-row"),
    "trace": ("#/traces/{trace}?job={nightly import}", ".span-row"),
    "stats": ("#/stats", '[data-stat="total"]'),
    "logs": ("#/logs", ".log-row"),
    "not-found": ("#/jobs/no-such-job", ".state-error"),
}

DARK_PAGES = ("jobs", "job-failed", "stats")


@pytest.mark.parametrize("viewport", [DESKTOP, NARROW], ids=["1280", "390"])
def test_every_page_fits_and_is_screenshotted(
    browser, web_server: ServerProcess, jobs: dict[str, str], viewport: dict[str, int]
) -> None:
    """No horizontal overflow at 1280 and 390 px; screenshots (light and dark) for review."""
    names = {**jobs, "trace": web_server.get(f"/api/jobs/{jobs['nightly import']}")["trace_id"]}
    SHOTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark") if viewport == DESKTOP else ("light",):
        dark = scheme == "dark"
        context = browser.new_context(viewport=viewport, color_scheme=scheme)
        page = context.new_page()
        try:
            for name, (fragment, ready) in PAGES.items():
                if dark and name not in DARK_PAGES:
                    continue
                page.goto(
                    f"{web_server.api}/" + re.sub(r"\{([^}]+)\}", lambda m: names[m[1]], fragment)
                )
                expect(page.locator(ready).first).to_be_visible()
                if name == "job-failed":
                    page.get_by_role("button", name="Stack trace").click()
                if name == "trace":
                    page.locator(".span-row").nth(2).click()
                if name == "stats":  # per-type percentiles arrive after the page
                    expect(page.locator(".type-table td", has_text="…")).to_have_count(0)
                overflow = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 0, f"{name} overflows by {overflow}px at {viewport['width']}px"
                suffix = "-dark" if dark else ""
                page.screenshot(
                    path=SHOTS / f"{name}-{viewport['width']}{suffix}.png", full_page=True
                )
        finally:
            context.close()
