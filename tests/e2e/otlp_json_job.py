"""The reference jobs as hand-written OTLP/JSON, following the OTLP spec's JSON encoding:
lowerCamelCase keys, hex ids (upper-case here on purpose), int64 as decimal strings,
enums as integers."""

from __future__ import annotations

import gzip
import json
import os
import time
import urllib.request
from typing import Any

SEVERITY = {"debug": (5, "DEBUG"), "info": (9, "INFO"), "success": (10, "SUCCESS"),
            "warn": (13, "WARN"), "error": (17, "ERROR"), "fatal": (21, "FATAL")}  # fmt: skip


def _hex(n: int) -> str:
    return os.urandom(n).hex().upper()


def _attrs(values: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, value in values.items():
        if isinstance(value, bool):
            v: dict[str, Any] = {"boolValue": value}
        elif isinstance(value, int):
            v = {"intValue": str(value)}
        else:
            v = {"stringValue": str(value)}
        out.append({"key": key, "value": v})
    return out


class JsonJobs:
    """Builds the spans and log records, then posts them."""

    def __init__(self) -> None:
        self.trace = _hex(16)
        self.spans: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self.clock = time.time_ns()

    def tick(self, ms: float = 1.0) -> int:
        self.clock += int(ms * 1e6)
        return self.clock

    def span(self, name: str, attrs: dict[str, Any], parent: str = "", **extra: Any) -> str:
        span_id = _hex(8)
        start = self.tick()
        self.spans.append({
            "traceId": self.trace, "spanId": span_id, "parentSpanId": parent, "name": name,
            "kind": 1, "startTimeUnixNano": str(start), "attributes": _attrs(attrs), **extra,
        })  # fmt: skip
        return span_id

    def end(self, span_id: str, **attrs: Any) -> None:
        for s in self.spans:
            if s["spanId"] == span_id:
                s["endTimeUnixNano"] = str(self.tick(2))
                s["attributes"] += _attrs(attrs)

    def log(self, span_id: str, level: str, body: str, **attrs: Any) -> None:
        number, text = SEVERITY[level]
        self.logs.append({
            "timeUnixNano": str(self.tick(0.01)), "severityNumber": number, "severityText": text,
            "body": {"stringValue": body}, "attributes": _attrs(attrs),
            "traceId": self.trace, "spanId": span_id,
        })  # fmt: skip


def build() -> tuple[JsonJobs, dict[str, str]]:
    """The same jobs as apps/plain_sdk_jobs.py; returns the builder and name -> job id."""
    j = JsonJobs()
    ids = {}
    job = j.span("nightly import", {"job.type": "import", "job.owner": "ann", "job.total_steps": 3,
                                    "job.metadata.source": "s3://bucket/users.csv"})  # fmt: skip
    ids["nightly import"] = job.lower()
    j.log(job, "info", "import starting", rows_expected=300)
    for seq, name in enumerate(["download", "transform"], start=1):
        step = j.span(name, {"job.step": name, "job.step.seq": seq}, parent=job)
        for i in range(100):
            j.log(step, ["debug", "info", "warn"][i % 3], f"{name} line {i}", line=i)
        j.end(step, **{"job.step.status": "completed"})
    step = j.span("load", {"job.step": "load", "job.step.seq": 3}, parent=job)
    j.log(step, "warn", "nothing to load, skipping")
    j.end(step, **{"job.step.status": "skipped"})
    child = j.span("rebuild index", {"job.type": "index", "job.owner": "ann"}, parent=job)
    ids["rebuild index"] = child.lower()
    j.log(child, "success", "index rebuilt", entries=300)
    j.end(child)
    j.log(job, "success", "import done", rows=300)
    j.end(job, **{"job.result": json.dumps({"rows": 300})})

    stack = 'Traceback (most recent call last):\n  File "export.py", line 3, in run\n    raise ValueError("disk full")\nValueError: disk full\n'  # noqa: E501
    exc = {"exception.type": "ValueError", "exception.message": "disk full", "exception.stacktrace": stack}  # noqa: E501
    broken = j.span(
        "broken export", {"job.type": "export"},
        status={"code": 2, "message": "ValueError: disk full"},
        events=[{"timeUnixNano": str(j.tick()), "name": "exception", "attributes": _attrs(exc)}],
    )  # fmt: skip
    ids["broken export"] = broken.lower()
    j.log(broken, "error", "export failed", **exc)
    j.end(broken)
    return j, ids


def post(base_url: str, service: str, jobs: JsonJobs, *, compress: bool) -> None:
    """POST the spans and logs as OTLP/JSON (optionally gzip-compressed)."""
    resource = {"attributes": _attrs({"service.name": service})}
    docs = {
        "/v1/logs": {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": jobs.logs}]}]},  # noqa: E501
        "/v1/traces": {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": jobs.spans}]}]},  # noqa: E501
    }
    for path, doc in docs.items():
        body = json.dumps(doc).encode()
        headers = {"Content-Type": "application/json"}
        if compress:
            body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
        req = urllib.request.Request(base_url + path, data=body, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
            assert resp.status == 200 and json.loads(resp.read()) == {}
