"""The JSON API: ``create_app(db)`` builds the aiohttp application.

Other route modules (live streams, the web page) plug in through ``extra_routes`` and read
the database through the app's :class:`Reader` (``request.app[READER_KEY]``).

Example:
    >>> from jobtrail.api import create_app
    >>> from jobtrail.storage import Database
    >>> app = create_app(Database(":memory:"))
"""

from __future__ import annotations

from jobtrail.api._keys import DB_KEY, READER_KEY, ApiSettings
from jobtrail.api._reader import QueryTimeout, Reader
from jobtrail.api.app import create_app
from jobtrail.api.broker import Broker
from jobtrail.api.routes import error_body, json_response

__all__ = [
    "DB_KEY",
    "READER_KEY",
    "ApiSettings",
    "Broker",
    "QueryTimeout",
    "Reader",
    "create_app",
    "error_body",
    "json_response",
]
