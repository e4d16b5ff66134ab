"""OTLP value helpers: AnyValue and KeyValue lists to Python, ids and times checked.

Everything the decoders need to turn protobuf fields into row values lives here, so the
rules for what is a valid id or timestamp are written once for traces, logs and metrics.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

import orjson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

#: Timestamps outside [2000-01-01, 2200-01-01) are not believable and get the record rejected.
MIN_TIME_NS = 946_684_800 * 10**9
MAX_TIME_NS = 7_258_118_400 * 10**9


class InvalidRecord(ValueError):
    """One record cannot be stored (bad id, absurd time); the rest of the request can."""


def any_value(value: AnyValue, depth: int = 0) -> Any:
    """Convert an OTLP AnyValue to a JSON-ready Python value."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if depth > 32:
        return None
    if kind == "array_value":
        return [any_value(v, depth + 1) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value, depth + 1) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def attributes(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    """Convert a KeyValue list to a dict (later duplicates win, as the SDKs do)."""
    return {kv.key: any_value(kv.value) for kv in kvs}


def to_json(value: Any) -> str:
    """Serialise attribute values; anything orjson cannot encode becomes its repr."""
    return orjson.dumps(value, default=repr).decode()


def hex_id(raw: bytes, size: int, what: str, *, required: bool) -> str | None:
    """Validate an id's length and return it as lower-case hex (None when empty)."""
    if not raw:
        if required:
            raise InvalidRecord(f"{what} is empty")
        return None
    if len(raw) != size:
        raise InvalidRecord(f"{what} has {len(raw)} bytes, expected {size}")
    if raw == b"\x00" * size:
        if required:
            raise InvalidRecord(f"{what} is all zeroes")
        return None
    return raw.hex()


def micros(ns: int, what: str, *, required: bool = False) -> int | None:
    """Nanoseconds since the epoch to microseconds, rejecting absurd values."""
    if ns == 0:
        if required:
            raise InvalidRecord(f"{what} is missing")
        return None
    if not MIN_TIME_NS <= ns < MAX_TIME_NS:
        raise InvalidRecord(f"{what} {ns} is out of range")
    return ns // 1000


def service_of(resource_attrs: dict[str, Any]) -> str | None:
    """The ``service.name`` of a resource, as a string."""
    name = resource_attrs.get("service.name")
    return None if name is None else str(name)


def enum_value(value: int, what: str, maximum: int) -> int:
    """Check an OTLP enum (span kind, status code, severity) fits its known range."""
    if not 0 <= value <= maximum:
        raise InvalidRecord(f"{what} {value} is out of range 0..{maximum}")
    return value
