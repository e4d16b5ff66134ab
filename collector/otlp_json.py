"""OTLP/JSON to protobuf messages, per the OTLP specification's JSON encoding.

OTLP/JSON is the protobuf JSON mapping with two differences handled here: trace and span
ids are hex strings (any case), not base64; and field names may be lowerCamelCase (the
mapping's default) or the original snake_case. Enums are integers, 64-bit integers may be
strings or numbers, unknown fields are ignored — all of which ``json_format`` already does.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)

_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
_MAX_DEPTH = 64


class InvalidJson(ValueError):
    """The body is not OTLP/JSON."""


def _fix_ids(node: Any, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        raise InvalidJson("JSON nested too deeply")
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                try:
                    value = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError as exc:
                    raise InvalidJson(f"{key} is not hex: {value[:40]!r}") from exc
            else:
                value = _fix_ids(value, depth + 1)
            out[key] = value
        return out
    if isinstance(node, list):
        return [_fix_ids(v, depth + 1) for v in node]
    return node


def parse(body: bytes, message: M) -> M:
    """Parse an OTLP/JSON body into ``message`` (returned); raise :class:`InvalidJson`."""
    try:
        doc = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise InvalidJson(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidJson("expected a JSON object")
    try:
        json_format.ParseDict(_fix_ids(doc), message, ignore_unknown_fields=True)
    except (json_format.ParseError, binascii.Error, RecursionError) as exc:
        raise InvalidJson(str(exc).splitlines()[0] if str(exc) else "invalid OTLP/JSON") from exc
    return message


def dump(message: Message) -> bytes:
    """Serialise a response message as OTLP/JSON (lowerCamelCase, empty fields omitted)."""
    return orjson.dumps(json_format.MessageToDict(message))
