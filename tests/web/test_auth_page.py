"""The page against a server whose API needs a token: asked once, then sent with every
request, the log download included (a plain link cannot carry the header).

Its own module, so its own server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.harness import ServerProcess
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e

TOKEN = "page-test-token-7f3a"
CONFIG = f"""
extensions:
  bearertokenauth:
    token: {TOKEN}
jobtrail:
  api: {{auth: {{authenticator: bearertokenauth}}}}
"""


@pytest.fixture(scope="module")
def web_server(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("web-auth"), CONFIG)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_token_asked_once_then_used_for_pages_and_downloads(
    page: Page, web_server: ServerProcess
) -> None:
    ids = json.loads(web_server.run_app("retry_cancel_jobs").strip().splitlines()[-1])
    job_id = ids["checked import"]  # acknowledged, so stored, before the app exited
    page.goto(f"{web_server.api}/#/jobs/{job_id}")
    expect(page.get_by_text("This server needs an API token")).to_be_visible()
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Use token").click()
    expect(page.locator("h1")).to_have_text("checked import")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    saved = download.value
    assert saved.suggested_filename == f"job-{job_id}-logs.txt"
    text = Path(saved.path()).read_text()
    assert "3 rows checked" in text and "2 rows without an id" in text
