"""Arrow tables from the columns the native wire decoders fill.

``_logwire`` and ``_spanwire`` hand their column buffers over through Arrow's C data
interface: one struct array in a PyCapsule, whose buffers Arrow takes without a copy and
frees when the table goes. The schema (with its JSON extension types) comes from
:mod:`jobtrail.storage.model`; the extensions check their column names against it at import.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa


class _Exported:
    """The PyCapsule protocol's ``__arrow_c_array__`` for one decoded request."""

    __slots__ = ("_array", "_schema")

    def __init__(self, schema: pa.Schema, array: Any) -> None:
        self._schema = schema
        self._array = array

    def __arrow_c_array__(self, requested_schema: Any = None) -> tuple[Any, Any]:
        return self._schema.__arrow_c_schema__(), self._array


def table_from_capsule(schema: pa.Schema, array: Any) -> pa.Table:
    """A table of ``schema`` over the struct array in the "arrow_array" capsule ``array``."""
    return pa.Table.from_batches([pa.record_batch(_Exported(schema, array))])
