"""Parsing of the API's query parameters: times, lists, unknown and repeated names."""

from __future__ import annotations

from datetime import datetime

import pytest
from multidict import MultiDict

from jobtrail.api import params as p
from jobtrail.storage.queries import InvalidParameter

NOW = datetime(2026, 11, 23, 12, 0, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T19:56:46.123456Z", datetime(2026, 11, 23, 19, 56, 46, 123456)),
        ("2026-11-23t19:56:46z", datetime(2026, 11, 23, 19, 56, 46)),
        ("2026-11-23T21:56:46+02:00", datetime(2026, 11, 23, 19, 56, 46)),
        ("2026-11-23T21:56:46 02:00", datetime(2026, 11, 23, 19, 56, 46)),  # '+' lost in a URL
        ("2026-11-23T14:56:46-05:00", datetime(2026, 11, 23, 19, 56, 46)),
        ("2026-11-23 19:56", datetime(2026, 11, 23, 19, 56)),
        ("2026-11-23", datetime(2026, 11, 23)),
        ("now", NOW),
        ("90s", datetime(2026, 11, 23, 11, 58, 30)),
        ("24h", datetime(2026, 11, 22, 12, 0)),
        ("7d", datetime(2026, 11, 16, 12, 0)),
        ("2w", datetime(2026, 11, 9, 12, 0)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    assert p.parse_time(text, name="since", now=NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "24", "-1h", "2026-13-01", "1y"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(InvalidParameter, match="^since: "):
        p.parse_time(text, name="since", now=NOW)


def test_list_parameters() -> None:
    query = MultiDict([("level", "warn, error"), ("level", "warn"), ("_", "123")])
    assert p.get_list(query, "level", ("warn", "error")) == ("warn", "error")
    p.check_known(query, {"level"})  # '_'-prefixed cache busters are ignored
    with pytest.raises(InvalidParameter, match="^level: given more than once"):
        p.get_str(query, "level")
    assert p.get_str(MultiDict(q="  "), "q") is None
