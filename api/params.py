"""Parsing and validating query-string parameters.

Every helper raises :class:`~jobtrail.storage.queries.InvalidParameter` naming the
parameter, which the error middleware turns into a 400: a typo in a request must never
surface as a 500 or, worse, be silently ignored (unknown parameters are errors too).

Times (``since``, ``until``) accept RFC 3339 (``2026-11-23T19:56:46Z``, any offset,
optional fraction), ISO dates (``2026-11-23``, midnight UTC), naive date-times (taken as
UTC), ``now``, and relative ages ``<n><unit>`` with unit ``s|m|h|d|w`` meaning that long
before now (``24h``, ``7d``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from multidict import MultiMapping

from jobtrail.semconv import LEVELS
from jobtrail.storage.queries import InvalidParameter, LogFilter

Query = MultiMapping[str]

_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d{1,9})\s*([smhdw])")
_SPACE_OFFSET = re.compile(r"(T[\d:.]+) (\d{2}:?\d{2})$")
#: Largest id or count a query takes (ids are BIGINT): beyond it a 400, not a database error.
MAX_INT = 2**63 - 1
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_SPAN_ID = re.compile(r"[0-9a-f]{16}")


def utcnow() -> datetime:
    """Now as naive UTC, the reference for relative times."""
    return datetime.now(UTC).replace(tzinfo=None)


def check_known(query: Query, allowed: Collection[str]) -> None:
    """Reject parameters the endpoint does not take (``_``-prefixed ones are ignored)."""
    for name in query:
        if name not in allowed and not name.startswith("_"):
            expected = ", ".join(sorted(allowed)) or "none"
            raise InvalidParameter(f"unknown parameter (expected: {expected})", name=name)


def get_str(query: Query, name: str) -> str | None:
    """A single-valued string; empty counts as absent (HTML forms send empty fields)."""
    values = query.getall(name, [])
    if len(values) > 1:
        raise InvalidParameter("given more than once", name=name)
    value = values[0].strip() if values else ""
    return value or None


def get_list(query: Query, name: str, allowed: Collection[str] | None = None) -> tuple[str, ...]:
    """A comma list (repeating the parameter works too), checked against ``allowed``."""
    items: list[str] = []
    for raw in query.getall(name, []):
        items.extend(part.strip() for part in raw.split(",") if part.strip())
    if allowed is not None:
        for item in items:
            if item not in allowed:
                raise InvalidParameter(
                    f"unknown value {item!r} (expected one of: {', '.join(allowed)})", name=name
                )
    return tuple(dict.fromkeys(items))


def get_int(
    query: Query, name: str, *, default: int | None, minimum: int, maximum: int | None = None
) -> int | None:
    """An integer in ``[minimum, maximum]`` (``maximum`` defaults to :data:`MAX_INT`)."""
    text = get_str(query, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidParameter(f"expected an integer, got {text!r}", name=name) from None
    upper = MAX_INT if maximum is None else maximum
    if not minimum <= value <= upper:
        bound = f">= {minimum}" if maximum is None and value < minimum else f"<= {upper}"
        bound = f"between {minimum} and {maximum}" if maximum is not None else bound
        raise InvalidParameter(f"must be {bound}, got {value}", name=name)
    return value


def get_limit(query: Query, *, default: int, maximum: int) -> int:
    """``limit``: a page size in ``[1, maximum]``."""
    value = get_int(query, "limit", default=default, minimum=1, maximum=maximum)
    assert value is not None
    return value


def get_bool(query: Query, name: str, *, default: bool = False) -> bool:
    """``true|false`` (also ``1|0``, ``yes|no``, ``on|off``)."""
    text = get_str(query, name)
    if text is None:
        return default
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise InvalidParameter(f"expected true or false, got {text!r}", name=name)


def get_span_id(query: Query, name: str = "span_id") -> str | None:
    """A span id: 16 hex digits, any case, returned lower-case (the tables' form)."""
    text = get_str(query, name)
    if text is None:
        return None
    value = text.lower()
    if not _SPAN_ID.fullmatch(value):
        raise InvalidParameter(f"expected a span id of 16 hex digits, got {text!r}", name=name)
    return value


def parse_duration_s(text: str, *, name: str) -> int:
    """``'5m'`` -> ``300``: a positive whole number of ``s|m|h|d|w``."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise InvalidParameter(
            f"expected a duration like 30s, 5m, 1h, 1d or 1w, got {text!r}", name=name
        )
    return int(match.group(1)) * _UNITS_S[match.group(2)]


def parse_time(text: str, *, name: str, now: datetime) -> datetime:
    """A time parameter as naive UTC (the tables' form); see the module docstring."""
    text = text.strip()
    if text.lower() == "now":
        return now
    if _DURATION.fullmatch(text.lower()):
        return now - timedelta(seconds=parse_duration_s(text, name=name))
    # An unencoded '+' in a query string arrives as a space: "...T10:00:00 02:00".
    iso = _SPACE_OFFSET.sub(r"\1+\2", text.upper())
    try:
        value = datetime.fromisoformat(iso)
    except ValueError:
        raise InvalidParameter(
            f"expected an RFC 3339 time, a date, or an age like 24h or 7d; got {text!r}",
            name=name,
        ) from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def get_time(query: Query, name: str, *, now: datetime) -> datetime | None:
    """An optional time parameter, parsed with :func:`parse_time`."""
    text = get_str(query, name)
    return None if text is None else parse_time(text, name=name, now=now)


def get_range(query: Query, *, now: datetime) -> tuple[datetime | None, datetime | None]:
    """``since`` and ``until``, checked to be in order."""
    since = get_time(query, "since", now=now)
    until = get_time(query, "until", now=now)
    if since is not None and until is not None and until <= since:
        raise InvalidParameter("must be later than since", name="until")
    return since, until


LOG_KINDS = ("job", "step", "system")


def log_filter(query: Query, *, with_range: bool) -> LogFilter:
    """The log filter of ``/api/logs`` (and its live tail, which has no time range)."""
    since, until = get_range(query, now=utcnow()) if with_range else (None, None)
    return LogFilter(
        levels=get_list(query, "level", LEVELS),
        kinds=get_list(query, "type", LOG_KINDS),
        categories=get_list(query, "category"),
        job_id=get_str(query, "job"),
        step=get_str(query, "step"),
        span_id=get_span_id(query),
        service=get_str(query, "service"),
        since=since,
        until=until,
        q=get_str(query, "q"),
        include_events=get_bool(query, "events"),
    )
