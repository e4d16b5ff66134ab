"""Arrow tables from the column buffers the native wire decoders fill.

``_logwire`` and ``_spanwire`` hand back, per column, ``(null_count, validity, offsets,
data)``: the buffers Arrow itself would hold. Wrapping them costs one ``from_buffers``
per column instead of one Python object per value.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

#: One column as the extensions return it: null count, validity bitmap (None: no nulls),
#: int32 offsets (strings only) and data.
Buffers = tuple[int, bytes | None, bytes | None, bytes]


def table_from_buffers(schema: pa.Schema, rows: int, columns: Sequence[Buffers]) -> pa.Table:
    """A table of ``rows`` rows whose columns, in ``schema`` order, are ``columns``."""
    arrays = [_array(f.type, rows, *column) for f, column in zip(schema, columns, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


def _array(
    kind: pa.DataType,
    rows: int,
    nulls: int,
    valid: bytes | None,
    offsets: bytes | None,
    data: bytes,
) -> pa.Array:
    buffers = [valid, data] if offsets is None else [valid, offsets, data]
    storage = kind.storage_type if isinstance(kind, pa.BaseExtensionType) else kind
    array = pa.Array.from_buffers(
        storage, rows, [None if b is None else pa.py_buffer(b) for b in buffers],
        null_count=nulls,
    )  # fmt: skip
    return pa.ExtensionArray.from_storage(kind, array) if storage is not kind else array
