"""Typed keys of the app's state, in their own module so handlers and app share them."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from jobtrail.api._reader import Reader
from jobtrail.api.broker import Broker
from jobtrail.storage import Database


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiSettings:
    """Read-side behaviour chosen when the app is created.

    Attributes:
        query_timeout_s: Longest a read may run before it is interrupted (503).
    """

    query_timeout_s: float = 30.0


#: The database the app reads.
DB_KEY = web.AppKey("jobtrail_db", Database)
#: Runs queries on worker threads; other route modules (live streams) may use it too.
READER_KEY = web.AppKey("jobtrail_reader", Reader)
SETTINGS_KEY = web.AppKey("jobtrail_api_settings", ApiSettings)
OPENAPI_KEY = web.AppKey("jobtrail_openapi", bytes)
#: Live fan-out of committed records to stream subscribers (present when streams are on).
BROKER_KEY = web.AppKey("jobtrail_broker", Broker)
