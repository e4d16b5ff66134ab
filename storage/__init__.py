"""DuckDB storage: schema, the single batched writer, and the queries the API serves."""

from __future__ import annotations

from jobtrail.storage.database import Database, DatabaseError
from jobtrail.storage.model import Batch, JobUpdate, StepUpdate
from jobtrail.storage.schema import SCHEMA_VERSION, SchemaError

__all__ = [
    "SCHEMA_VERSION",
    "Batch",
    "Database",
    "DatabaseError",
    "JobUpdate",
    "SchemaError",
    "StepUpdate",
]
