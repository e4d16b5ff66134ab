"""Random OTLP/JSON structures never crash the OTLP/HTTP receiver.

Any JSON type in any field, huge and negative numbers, bad hex ids, NaN, plain and gzip: every
answer is a documented one, in JSON (see fuzz_support.py).
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

from fuzz_support import (  # noqa: F401 - fixtures are used by name
    FUZZ,
    JSON,
    KINDS,
    TRIED,
    LiveReceivers,
    check_http,
    live_fixture,
    sentinel_fixture,
    still_serving_fixture,
    timestamps,
    wide_enums,
)
from hypothesis import given
from hypothesis import strategies as st

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=30),
    st.sampled_from(["", "0" * 32, "0" * 31 + "1", "ff" * 8, "zz", "1e400", "NaN", "-1", "18446744073709551616"]),
)  # fmt: skip
json_any = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def _json_any_value() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.one_of(
            st.fixed_dictionaries({"stringValue": json_scalars}),
            st.fixed_dictionaries({"intValue": json_scalars}),
            st.fixed_dictionaries({"doubleValue": st.one_of(json_scalars, st.sampled_from(["NaN", "Infinity"]))}),
            st.fixed_dictionaries({"boolValue": json_scalars}),
            st.fixed_dictionaries({"bytesValue": st.one_of(json_scalars, st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode()))}),
            json_any,
        ),
        lambda children: st.one_of(
            st.fixed_dictionaries({"arrayValue": st.fixed_dictionaries({"values": st.lists(children, max_size=3)})}),
            st.fixed_dictionaries({"kvlistValue": st.fixed_dictionaries(
                {"values": st.lists(st.fixed_dictionaries({"key": json_scalars, "value": children}), max_size=3)})}),
        ),
        max_leaves=10,
    )  # fmt: skip


json_attributes = st.lists(
    st.fixed_dictionaries({"key": st.one_of(st.text(max_size=10), json_scalars), "value": _json_any_value()}),
    max_size=4,
)  # fmt: skip
json_ids = st.one_of(json_scalars, st.binary(max_size=20).map(bytes.hex), st.just(None))
json_times = st.one_of(json_scalars, timestamps, timestamps.map(str))
json_spans = st.fixed_dictionaries(
    {},
    optional={
        "traceId": json_ids, "spanId": json_ids, "parentSpanId": json_ids, "name": json_scalars,
        "kind": wide_enums, "startTimeUnixNano": json_times, "endTimeUnixNano": json_times,
        "attributes": st.one_of(json_attributes, json_any),
        "status": st.fixed_dictionaries({}, optional={"code": wide_enums, "message": json_scalars}),
        "events": st.lists(st.fixed_dictionaries({"name": json_scalars, "timeUnixNano": json_times}), max_size=2),
    },
)  # fmt: skip
json_logs = st.fixed_dictionaries(
    {},
    optional={
        "traceId": json_ids, "spanId": json_ids, "timeUnixNano": json_times,
        "observedTimeUnixNano": json_times, "severityNumber": wide_enums,
        "severityText": json_scalars, "body": _json_any_value(), "attributes": json_attributes,
        "eventName": json_scalars,
    },
)  # fmt: skip
json_resource = st.fixed_dictionaries({}, optional={"attributes": json_attributes})


@st.composite
def otlp_json_docs(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(KINDS))
    if draw(st.integers(0, 9)) == 0:
        return kind, draw(json_any)  # anything at all
    if kind == "traces":
        leaf = {
            "scopeSpans": st.lists(
                st.fixed_dictionaries(
                    {"spans": st.lists(json_spans, max_size=3)}, optional={"scope": json_any}
                ),
                max_size=2,
            )
        }
        outer = "resourceSpans"
    elif kind == "logs":
        leaf = {
            "scopeLogs": st.lists(
                st.fixed_dictionaries({"logRecords": st.lists(json_logs, max_size=3)}), max_size=2
            )
        }
        outer = "resourceLogs"
    else:
        point = st.fixed_dictionaries(
            {},
            optional={
                "timeUnixNano": json_times,
                "asDouble": json_scalars,
                "asInt": json_scalars,
                "attributes": json_attributes,
            },
        )
        metric = st.fixed_dictionaries(
            {"name": json_scalars},
            optional={
                "gauge": st.fixed_dictionaries({"dataPoints": st.lists(point, max_size=2)}),
                "sum": st.fixed_dictionaries({"dataPoints": st.lists(point, max_size=2)}),
                "histogram": st.fixed_dictionaries(
                    {
                        "dataPoints": st.lists(
                            st.fixed_dictionaries(
                                {},
                                optional={
                                    "bucketCounts": json_any,
                                    "explicitBounds": json_any,
                                    "count": json_scalars,
                                },
                            ),
                            max_size=2,
                        )
                    }
                ),
            },
        )
        leaf = {
            "scopeMetrics": st.lists(
                st.fixed_dictionaries({"metrics": st.lists(metric, max_size=2)}), max_size=2
            )
        }
        outer = "resourceMetrics"
    resource = st.fixed_dictionaries(leaf, optional={"resource": json_resource})
    return kind, {outer: draw(st.lists(resource, min_size=1, max_size=2))}  # fmt: skip


@FUZZ
@given(doc=otlp_json_docs(), encoding=st.sampled_from(["identity", "gzip"]))
def test_random_otlp_json(live: LiveReceivers, doc: tuple[str, Any], encoding: str) -> None:
    kind, value = doc
    TRIED["OTLP/JSON structures"] = TRIED.get("OTLP/JSON structures", 0) + 1
    body = json.dumps(value).encode()
    headers = {"Content-Type": JSON}
    if encoding == "gzip":
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    status, ctype, data = live.post(kind, body, headers)
    check_http(kind, status, ctype, data)
    assert ctype.startswith(JSON), "a JSON request is answered in JSON"
