"""Page tests: Debian's Chromium driven by Playwright against a real ``jobtrail serve``.

Playwright's own browser download cannot work on a closed network, so the tests launch the
system Chromium (``apt-get install chromium``) and skip only when it is absent. One server
per module, filled once by the agent, keeps the whole suite well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from e2e.harness import ServerProcess
from playwright.sync_api import Browser, Page, sync_playwright

from web.pages import CHROMIUM, CHROMIUM_ARGS, DESKTOP, NARROW, run_web_app


@pytest.fixture(scope="module")
def web_server(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A real server for the module (after ``browser``, so a missing Chromium skips first)."""
    srv = ServerProcess(tmp_path_factory.mktemp("web"))
    try:
        srv.start()
    except BaseException:
        if srv.proc is not None:  # started but never became ready: do not leave it behind
            srv.proc.kill()
            srv.proc.wait()
            srv.log.close()
        raise
    try:
        yield srv
    finally:
        if srv.proc is not None:
            srv.stop()


@pytest.fixture(scope="module")
def jobs(web_server: ServerProcess) -> dict[str, str]:
    """The reference jobs (name -> id), stored and finished before any page opens."""
    ids: dict[str, str] = run_web_app(web_server, "web_jobs")
    web_server.wait_for(
        "/api/jobs",
        lambda body: (
            {j["id"] for j in body["jobs"]} >= set(ids.values())
            and all(j["status"] not in ("pending", "running") for j in body["jobs"])
        ),
        limit=100,
    )
    return ids


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium; every page test skips, saying why, when it is not installed.

    Module-scoped on purpose: Playwright's sync API keeps an event loop running in this
    thread while it is open, which would break asyncio tests collected after it.
    """
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium) "
            "to run the page tests"
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class PageErrors(list[str]):
    """JavaScript errors seen by a page; a test fails if any happened."""


def _new_page(
    browser: Browser, viewport: dict[str, int], **options: Any
) -> tuple[Page, PageErrors]:
    context = browser.new_context(viewport=viewport, **options)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = PageErrors()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A desktop-sized page; uncaught JavaScript errors fail the test."""
    page, errors = _new_page(browser, DESKTOP)
    try:
        yield page
    finally:
        page.context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def narrow_page(browser: Browser) -> Iterator[Page]:
    """A phone-sized page (390 px wide)."""
    page, errors = _new_page(browser, NARROW, is_mobile=True, has_touch=True)
    try:
        yield page
    finally:
        page.context.close()
    assert not errors, f"JavaScript errors: {errors}"
