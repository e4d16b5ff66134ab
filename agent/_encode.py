"""Turning user data and exceptions into OTel attribute values.

OTLP attributes accept only primitives, and one oversized value can make a whole export
batch fail, so every user-supplied value passes through here: primitives as-is, anything
else JSON-encoded, long strings truncated in the middle (the start and the end of a value
are usually the informative parts — seed 004's ``truncateMiddle``).
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Mapping
from types import FrameType
from typing import Any

from jobtrail.semconv import EXCEPTION_MESSAGE, EXCEPTION_STACKTRACE, EXCEPTION_TYPE

__all__ = [
    "AttributeValue",
    "caller_stack",
    "describe_exception",
    "encode_data",
    "encode_value",
    "exception_attributes",
    "exception_type_name",
    "json_text",
    "truncate_middle",
]

AttributeValue = str | bool | int | float

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_AGENT_PACKAGE = "jobtrail.agent"
_ELLIPSIS = " ... "


def truncate_middle(text: str, max_len: int) -> str:
    """Shorten ``text`` to at most ``max_len`` characters, keeping its start and end.

    Example:
        >>> truncate_middle("abcdefghijklmnopqrstuvwxyz", 16)
        'abcde ... vwxyz'
    """
    if len(text) <= max_len:
        return text
    half = max(1, (max_len - len(_ELLIPSIS)) // 2)
    return text[:half] + _ELLIPSIS + text[-half:]


def json_text(value: Any) -> str:
    """JSON-encode ``value``; unknown types fall back to ``str()`` so encoding never fails.

    Example:
        >>> json_text({"n": 1, "tags": ["a"]})
        '{"n": 1, "tags": ["a"]}'
    """
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):  # circular references, non-str keys
        return repr(value)


def encode_value(value: Any, max_len: int) -> AttributeValue:
    """Encode one user value as an OTel attribute value (primitive or JSON string).

    Integers outside int64 become strings: OTLP cannot carry them and would fail the
    whole batch at export time.

    Example:
        >>> encode_value([1, 2], 1024)
        '[1, 2]'
    """
    if type(value) is str:  # the common case first: this runs for every value logged
        return value if len(value) <= max_len else truncate_middle(value, max_len)
    if isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else str(value)
    text = value if isinstance(value, str) else json_text(value)
    return truncate_middle(text, max_len)


def encode_data(
    data: Mapping[str, Any], max_len: int, into: dict[str, AttributeValue], prefix: str = ""
) -> dict[str, AttributeValue]:
    """Encode every item of ``data`` into ``into`` (keys optionally prefixed); return it."""
    for key, value in data.items():
        into[prefix + str(key)] = encode_value(value, max_len)
    return into


def exception_type_name(exc: BaseException) -> str:
    """Name an exception's type the way the OTel SDK does (``module.Qualname``)."""
    cls = type(exc)
    module = cls.__module__
    return f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__


def describe_exception(exc: BaseException) -> str:
    """Return ``"Type: message"`` (just ``"Type"`` when the message is empty).

    Example:
        >>> describe_exception(ValueError("bad row"))
        'ValueError: bad row'
    """
    message = str(exc)
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


def exception_attributes(exc: BaseException) -> dict[str, AttributeValue]:
    """Return ``exception.type``/``message``/``stacktrace`` attributes for ``exc``."""
    return {
        EXCEPTION_TYPE: exception_type_name(exc),
        EXCEPTION_MESSAGE: str(exc),
        EXCEPTION_STACKTRACE: "".join(traceback.format_exception(exc)),
    }


def _first_user_frame() -> FrameType | None:
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not (name == _AGENT_PACKAGE or name.startswith(_AGENT_PACKAGE + ".")):
            return frame
        frame = frame.f_back
    return None


def caller_stack() -> str:
    """Format the current stack, starting at the first frame outside the agent.

    Used by ``error``/``fatal`` when no exception is active, so the record still says
    where it was logged from (seed 004: "both error and fatal capture stack traces").
    """
    frame = _first_user_frame()
    lines = traceback.format_stack(frame) if frame is not None else []
    return "Stack (most recent call last):\n" + "".join(lines)
