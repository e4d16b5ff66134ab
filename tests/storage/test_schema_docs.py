"""Every query of docs/schema.md runs against a database filled by the agent, so the docs stay true.

A real server receives the e2e apps' jobs (``agent_jobs``: steps, logs, a child job, a
failure; ``retry_cancel_jobs``: retries and cancellations); each documented query is then
POSTed to ``/api/sql``, which also exercises the route end to end.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.harness import ServerProcess

from jobtrail.storage.schema import TABLES, VIEWS

pytestmark = pytest.mark.e2e

DOC = Path(__file__).parents[2] / "docs" / "schema.md"
_QUERY = re.compile(
    r"^### (?P<title>[^\n]+)\n(?:(?!^### ).)*?^```sql\n(?P<sql>.*?)^```", re.M | re.S
)

#: Documented queries whose answer is empty on this data (nothing runs, no system logs, no
#: metrics); every other one must return rows.
MAY_BE_EMPTY = frozenset({"Jobs still running", "System logs (no job)", "Metric points per name"})
_FINAL = {"completed", "failed", "cancelled"}


def documented_queries() -> list[tuple[str, str]]:
    return [(m["title"], m["sql"]) for m in _QUERY.finditer(DOC.read_text())]


def post_sql(server: ServerProcess, sql: str) -> Any:
    request = urllib.request.Request(
        f"{server.api}/api/sql",
        data=json.dumps({"sql": sql, "limit": 10_000}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - loopback
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{exc.code}: {exc.read().decode()}") from None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("schema_docs"))
    srv.start()
    try:
        srv.run_app("agent_jobs")
        srv.run_app("retry_cancel_jobs")
        srv.wait_for(
            "/api/jobs",
            lambda body: (
                len(body["jobs"]) == 9 and all(j["status"] in _FINAL for j in body["jobs"])
            ),
            limit=100,
        )
        yield srv
    finally:
        srv.stop()


def test_the_doc_has_a_dozen_queries_and_every_table() -> None:
    queries = documented_queries()
    assert len(queries) >= 12
    assert DOC.read_text().count("```sql") == len(queries)  # each block under its own title
    assert len({title for title, _ in queries}) == len(queries)
    text = DOC.read_text()
    for name in (*TABLES, *VIEWS):
        assert f"`{name}`" in text, f"{name} is not documented"


@pytest.mark.parametrize(("title", "sql"), documented_queries(), ids=lambda v: v[:40])
def test_documented_query_runs(server: ServerProcess, title: str, sql: str) -> None:
    result = post_sql(server, sql)
    assert result["columns"] and len(result["types"]) == len(result["columns"])
    assert not result["truncated"]
    if title not in MAY_BE_EMPTY:
        assert result["rows"], f"{title!r} returned no rows"


def test_documented_columns_exist(server: ServerProcess) -> None:
    """Every column the doc's tables list is a real column of that table."""
    text = DOC.read_text()
    for table in TABLES:
        section = text.split(f"### `{table}`", 1)[1].split("\n### ", 1)[0]
        documented = set()
        for cell in re.findall(r"^\| (.+?) \|", section, re.M):
            documented.update(re.findall(r"`(\w+)`", cell))
        actual = {
            row[0]
            for row in post_sql(
                server,
                f"SELECT column_name FROM duckdb_columns() WHERE table_name = '{table}'",
            )["rows"]
        }
        assert documented == actual, table
