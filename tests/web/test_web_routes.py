"""``add_web_routes``: the page and its static files, without a browser."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from jobtrail.api.web import STATIC_DIR, add_web_routes

_IMPORT = re.compile(
    r"""(?:^|\s)(?:import|from)\s*(?:[\w{}\s,*]+from\s*)?["'](\.{1,2}/[^"']+)["']"""
)
_DYNAMIC = re.compile(r"""import\(\s*["'](\.{1,2}/[^"']+)["']\s*\)""")


def _app() -> web.Application:
    app = web.Application()
    add_web_routes(app)
    return app


async def test_index_and_static_files_are_served(aiohttp_client: Any) -> None:
    client = await aiohttp_client(_app())
    index = await client.get("/")
    assert index.status == 200
    assert index.content_type == "text/html"
    assert index.headers["Cache-Control"] == "no-cache"
    html = await index.text()
    assert '<script type="module" src="/static/app.js">' in html

    script = await client.get("/static/app.js")
    assert script.status == 200
    assert script.content_type in ("text/javascript", "application/javascript")
    assert script.headers["Cache-Control"] == "no-cache"
    css = await client.get("/static/style.css")
    assert css.status == 200 and css.content_type == "text/css"


async def test_static_route_does_not_leave_its_folder(aiohttp_client: Any) -> None:
    client = await aiohttp_client(_app())
    assert (await client.get("/static/missing.js")).status == 404
    assert (await client.get("/static/../web.py")).status in (403, 404)
    assert (await client.get("/static/%2e%2e/web.py")).status in (403, 404)


def test_every_relative_import_of_the_page_exists() -> None:
    """No build step: a module imported under a wrong name would only fail in a browser."""
    modules = sorted(STATIC_DIR.rglob("*.js"))
    seen = 0
    for module in modules:
        text = module.read_text()
        for target in _IMPORT.findall(text) + _DYNAMIC.findall(text):
            seen += 1
            assert (module.parent / target).resolve().is_file(), f"{module.name} imports {target}"
    assert len(modules) > 10 and seen > 30, (len(modules), seen)


def test_the_page_loads_nothing_from_other_hosts() -> None:
    """The page must work on a closed network: no CDN, fonts or scripts from elsewhere."""
    for path in STATIC_DIR.rglob("*"):
        if path.suffix in (".js", ".css", ".html"):
            text = path.read_text()
            assert not re.search(
                r"""(?:src|href)=["']https?://|@import\s+url\(\s*["']?https?://""", text
            ), path
            assert 'fetch("http' not in text and "fetch('http" not in text, path
