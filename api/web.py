"""The web page: ``GET /`` serves ``static/index.html``, ``/static/...`` the ES modules and CSS.

There is no build step: the files under ``static/`` are what the browser runs, so a fresh
clone (or an installed wheel, which ships them as package data) serves the page as it is.
The page only talks to the JSON API (``/api/...``); nothing here reads the database.

Example:
    >>> from aiohttp import web
    >>> app = web.Application()
    >>> add_web_routes(app)
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).with_name("static")

# Module scripts must come with a JavaScript MIME type; a machine without /etc/mime.types
# still gets the right one.
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/css", ".css")
mimetypes.add_type("image/svg+xml", ".svg")

_NO_CACHE = {"Cache-Control": "no-cache"}


async def index(request: web.Request) -> web.FileResponse:
    """The single page; its client-side router shows jobs, a job, a trace, stats or logs."""
    return web.FileResponse(STATIC_DIR / "index.html", headers=_NO_CACHE)


def add_web_routes(app: web.Application) -> None:
    """Register ``GET /`` and the static files on ``app`` (API routes are left alone).

    Static files are revalidated on every load (``no-cache`` plus aiohttp's
    ``Last-Modified``), so an upgraded server never runs a stale mix of modules.
    """
    app.router.add_get("/", index, name="web_index")

    async def no_cache(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/static/") and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-cache"

    app.on_response_prepare.append(no_cache)
    app.router.add_static("/static/", STATIC_DIR, name="web_static", follow_symlinks=False)
