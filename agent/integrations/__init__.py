"""Integrations: logging libraries and web frameworks, each in its own module.

Each module imports its framework only when imported itself, so none is a dependency:

- :mod:`~jobtrail.agent.integrations.structlog` — ``JobtrailProcessor``
- :mod:`~jobtrail.agent.integrations.loguru` — ``jobtrail_sink()``
- :mod:`~jobtrail.agent.integrations.aiohttp_server` — ``jobtrail_middleware()``
- :mod:`~jobtrail.agent.integrations.asgi` — ``JobtrailASGIMiddleware``
- :mod:`~jobtrail.agent.integrations.wsgi` — ``JobtrailWSGIMiddleware``
- :mod:`~jobtrail.agent.integrations.celery` — ``instrument_celery(app)``
"""

from __future__ import annotations

__all__: list[str] = []
