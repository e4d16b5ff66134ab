"""Emit N job spans with the plain OTel SDK as fast as possible, then flush (bounded).

Usage: sdk_burst.py N  — prints the job ids (span ids) it created, as JSON.
"""

from __future__ import annotations

import json
import sys

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

n = int(sys.argv[1])
provider = TracerProvider(resource=Resource.create())
provider.add_span_processor(
    BatchSpanProcessor(OTLPSpanExporter(timeout=60), max_queue_size=n + 1, max_export_batch_size=500)
)
tracer = provider.get_tracer("burst")
ids = []
for i in range(n):
    with tracer.start_as_current_span(f"burst {i}", attributes={"job.type": "burst"}) as s:
        ids.append(format(s.get_span_context().span_id, "016x"))
provider.force_flush(120_000)
provider.shutdown()
print(json.dumps(ids))
