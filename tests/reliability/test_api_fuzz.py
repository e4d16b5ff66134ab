"""The query API against its own OpenAPI document: schemathesis on a real server with data.

One real ``jobtrail serve`` (tests/e2e/harness.py), filled by the agent with the reference
jobs (``tests/e2e/apps/agent_jobs.py``: steps, logs at every level, a child job, a failed
and a cancelled job). Schemathesis reads ``/api/openapi.json`` from that server and, for
every operation, generates requests from the document (valid ones, and invalid ones: wrong
types, unknown enum values, strings where numbers belong) and checks each answer: never a
5xx, the status code and content type documented for the operation, the body valid against
the documented schema (so every error is the documented ``{"error": {"code", "message"}}``),
and answered within a time bound.

Streams are handled apart: the Server-Sent Events routes never end by design, so they are
called with ``stream=True`` and a short read; only their status, headers and (for errors)
bodies are checked. The WebSocket routes need an upgrade schemathesis does not perform;
their plain-HTTP answer is checked for being a documented, non-5xx one.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from e2e.harness import ServerProcess
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = int(os.environ.get("JOBTRAIL_API_FUZZ_EXAMPLES", "40"))
#: Fixed inputs by default (a failure reproduces); set JOBTRAIL_API_FUZZ_RANDOM=1 to explore.
RANDOM = bool(os.environ.get("JOBTRAIL_API_FUZZ_RANDOM"))
#: Any single answer (the API's own SQL limit is 10 s; nothing else should come near 2 s).
RESPONSE_S = 10.0
STREAM_READ_S = 1.0
#: "Schema-valid request rejected" is left out: the document cannot say everything a value
#: must be (that ``sql`` is one SELECT, that ``since`` is a time or an age, that a ``cursor``
#: came from a previous page), so a request valid by the schema may rightly be a 400. The
#: 400's body is still checked against the documented error shape.
EXCLUDED = [positive_data_acceptance]


def _blank(value: Any) -> bool:
    """Whether a generated query value goes on the wire as an empty string."""
    if isinstance(value, list):
        return all(_blank(v) for v in value)
    return value == "" or value == {}


def _excluded(case: Any) -> list[Any]:
    """An empty query value counts as absent (documented: HTML forms send empty fields), so
    ``limit=`` is a valid request even though "" is not an integer."""
    empty = any(_blank(v) for v in (case.query or {}).values())
    return [*EXCLUDED, negative_data_rejection] if empty else EXCLUDED


#: Answers by operation and status, printed at the end for docs/reliability.md.
ANSWERS: collections.Counter[str] = collections.Counter()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("api-fuzz"))
    srv.start()
    try:
        srv.run_app("agent_jobs")
        srv.wait_for("/api/jobs", lambda body: len(body["jobs"]) >= 4)
        yield srv
    finally:
        srv.stop()
        print(f"\nAPI fuzz answers: {dict(sorted(ANSWERS.items()))}")


@pytest.fixture(scope="module")
def api_schema(server: ServerProcess) -> Any:
    schema = schemathesis.openapi.from_url(f"{server.api}/api/openapi.json", timeout=10)
    schema.config.base_url = server.api
    # A body over the API's 1 MiB limit is refused with the documented 413.
    schema.config.checks.negative_data_rejection.expected_statuses.append("413")
    return schema


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def _is_ws(operation: Any) -> bool:
    return operation.path.endswith("/ws")


def _is_sse(operation: Any) -> bool:
    return operation.path.endswith("/stream")


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    """The document's operations, by kind: nothing is left out silently."""
    operations = _operations(api_schema)
    plain = [op.label for op in operations if not (_is_ws(op) or _is_sse(op))]
    print(f"\n{len(operations)} operations; plain {len(plain)}: {plain}")
    assert len(plain) >= 10


def _known_ids(server: ServerProcess) -> dict[str, list[str]]:
    """Ids that exist, so path parameters reach stored rows and not only 404s."""
    jobs = server.get("/api/jobs", limit=20)["jobs"]
    return {"id": [j["id"] for j in jobs], "trace_id": sorted({j["trace_id"] for j in jobs})}


def _run(operation: Any, base_url: str, stream: bool, known: dict[str, list[str]]) -> int:
    """Fuzz one operation; return the number of requests sent."""
    sent = 0

    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    if operation.query or operation.path_parameters or operation.body:
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    names = [p.name for p in operation.path_parameters] if operation.path_parameters else []
    for name in names:  # the same operation on real rows, other parameters still generated
        strategies += [
            operation.as_strategy(GenerationMode.POSITIVE, path_parameters={name: value})
            for value in known.get(name, [])[:4]
        ]

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=not RANDOM,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def one(case: Any) -> None:
        nonlocal sent
        sent += 1
        started = time.monotonic()
        if stream:  # headers only: a 200 stream never ends
            kwargs = case.as_transport_kwargs(base_url=base_url)
            with requests.request(**kwargs, stream=True, timeout=(5, STREAM_READ_S)) as response:
                ANSWERS[f"{operation.label} {response.status_code}"] += 1
                assert response.status_code < 500, response.status_code
                if response.status_code == 200:
                    assert response.headers["Content-Type"].startswith("text/event-stream")
                    assert next(response.iter_content(1)), "an open stream sends at once"
                else:  # an error body is finite: validate it whole
                    case.validate_response(response, excluded_checks=_excluded(case))
        else:
            response = case.call(base_url=base_url, timeout=RESPONSE_S)
            ANSWERS[f"{operation.label} {response.status_code}"] += 1
            case.validate_response(response, excluded_checks=_excluded(case))
        assert time.monotonic() - started < RESPONSE_S

    one()
    return sent


@pytest.mark.parametrize("kind", ["plain", "sse", "ws"])
def test_api_conforms_to_its_openapi_document(
    api_schema: Any, server: ServerProcess, kind: str
) -> None:
    started = time.monotonic()
    failures: list[str] = []
    sent = 0
    known = _known_ids(server)
    for operation in _operations(api_schema):
        is_kind = {"ws": _is_ws(operation), "sse": _is_sse(operation)}
        if kind == "plain" and any(is_kind.values()) or kind != "plain" and not is_kind[kind]:
            continue
        try:
            sent += _run(operation, server.api, kind == "sse", known)
        except (FailureGroup, AssertionError, requests.RequestException) as exc:
            failures.append(f"{operation.label}: {exc}"[:3000])
    took = time.monotonic() - started
    print(f"\n{kind}: {sent} requests in {took:.1f} s")
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize(
    ("path", "params", "headers"),
    [
        ("/api/jobs/{id}/logs", {"after_id": str(2**70)}, {}),
        ("/api/logs", {"after_id": str(2**63)}, {}),
        ("/api/logs", {"before_id": str(2**64)}, {}),
        ("/api/logs/stream", {}, {"Last-Event-ID": str(2**63)}),
        ("/api/jobs/{id}/stream", {"last_event_id": str(2**80)}, {}),
    ],
)
def test_ids_beyond_bigint_are_400s(
    server: ServerProcess, path: str, params: dict[str, str], headers: dict[str, str]
) -> None:
    """Found by this fuzzing: ``after_id`` past 2**63-1 reached DuckDB and was a 500."""
    job_id = server.get("/api/jobs", limit=1)["jobs"][0]["id"]
    response = requests.get(
        server.api + path.format(id=job_id), params=params, headers=headers, timeout=10
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter" and error["parameter"] in (
        *params,
        "last_event_id",
    ), error
