"""Turning the Python values DuckDB returns for ad-hoc SQL into JSON-ready values or Arrow.

JSON: timestamps become RFC 3339 UTC strings with microseconds (``...T19:56:46.123456Z``,
naive ones are taken as UTC, the tables' convention), dates and times ISO 8601 strings,
intervals seconds (a number), decimals numbers when a double holds them exactly (else
strings), integers beyond 64 bits strings, blobs lower-case hex, UUIDs strings, ``JSON``
columns parsed, maps objects with string keys. NaN and infinities become ``null``.

Arrow: each DuckDB type maps to its Arrow twin; a type without one (``BIT``, ``UNION``,
``BIGNUM``, ...) becomes a string column of the value's JSON text.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa

_INT64 = 2**63
_DOUBLE_DIGITS = 15


def format_timestamp(value: datetime) -> str:
    """RFC 3339 UTC with microseconds; a naive value is UTC already."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def json_value(value: Any, *, is_json: bool = False) -> Any:
    """One value as something ``orjson`` writes faithfully (see the module docstring)."""
    if value is None or (isinstance(value, bool | str) and not is_json):
        return value
    if isinstance(value, str):  # a JSON column
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {_key(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return str(value)


def _decimal(value: Decimal) -> float | str:
    if not value.is_finite():
        return str(value)
    if len(value.as_tuple().digits) <= _DOUBLE_DIGITS:
        return float(value)
    return str(value)


def _key(key: Any) -> str:
    value = json_value(key)
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def json_row(row: Sequence[Any], types: Sequence[str]) -> list[Any]:
    """A row of JSON-ready values; ``types`` says which columns hold JSON text."""
    return [json_value(v, is_json=t == "JSON") for v, t in zip(row, types, strict=True)]


# --- Arrow -----------------------------------------------------------------------------------

_SIMPLE: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "utinyint": pa.uint8(),
    "usmallint": pa.uint16(),
    "uinteger": pa.uint32(),
    "ubigint": pa.uint64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "varchar": pa.string(),
    "uuid": pa.string(),
    "enum": pa.string(),
    "blob": pa.binary(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamp_s": pa.timestamp("s"),
    "timestamp_ms": pa.timestamp("ms"),
    "timestamp_ns": pa.timestamp("ns"),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    "interval": pa.duration("us"),
}


def arrow_type(duck_type: Any) -> pa.DataType | None:
    """The Arrow type of a DuckDB type (``DuckDBPyType``); None when there is none."""
    kind = str(duck_type.id)
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    children = dict(duck_type.children) if kind in ("decimal", "list", "array", "map") else {}
    if kind == "decimal":
        return pa.decimal128(int(children["precision"]), int(children["scale"]))
    if kind in ("hugeint", "uhugeint"):
        return pa.decimal128(38, 0) if kind == "hugeint" else None
    if kind in ("list", "array"):
        child = arrow_type(children["child"])
        return None if child is None else pa.list_(child)
    if kind == "struct":
        fields = [(name, arrow_type(t)) for name, t in duck_type.children]
        if any(t is None for _, t in fields) or not fields:
            return None
        return pa.struct([pa.field(name, t) for name, t in fields])
    if kind == "map":
        key, item = arrow_type(children["key"]), arrow_type(children["value"])
        return None if key is None or item is None else pa.map_(key, item)
    return None


def _prepare(value: Any, kind: pa.DataType) -> Any:
    """A Python value in the shape ``pa.array(..., type=kind)`` takes."""
    if value is None:
        return None
    if pa.types.is_string(kind) and not isinstance(value, str):
        return str(value)
    if pa.types.is_decimal(kind) and isinstance(value, int):
        return Decimal(value)
    if pa.types.is_map(kind) and isinstance(value, dict):
        return [(k, _prepare(v, kind.item_type)) for k, v in value.items()]
    if pa.types.is_list(kind) and isinstance(value, list | tuple):
        return [_prepare(v, kind.value_type) for v in value]
    if pa.types.is_struct(kind) and isinstance(value, dict):
        return {f.name: _prepare(value.get(f.name), f.type) for f in kind}
    return value


def _as_text(values: list[Any]) -> pa.Array:
    texts = [None if v is None else orjson.dumps(json_value(v)).decode() for v in values]
    return pa.array(texts, type=pa.string())


def arrow_table(columns: Sequence[str], duck_types: Sequence[Any], rows: Sequence[Any]) -> pa.Table:
    """The rows as an Arrow table with one column per result column (names may repeat)."""
    arrays: list[pa.Array] = []
    for index, duck_type in enumerate(duck_types):
        values = [row[index] for row in rows]
        kind = arrow_type(duck_type)
        if kind is None:
            arrays.append(_as_text(values))
            continue
        try:
            arrays.append(pa.array([_prepare(v, kind) for v in values], type=kind))
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            arrays.append(_as_text(values))
    names = [str(c) for c in columns]
    if not arrays:
        return pa.table({})
    return pa.Table.from_arrays(arrays, names=names)
