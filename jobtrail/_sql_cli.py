"""``jobtrail sql``: run one read-only SELECT through a running server (``POST /api/sql``).

DuckDB lets one process write a database file, so while the server runs, ad-hoc SQL goes
through it. Output is a rich table (default), the API's JSON, CSV, or a Parquet file.

Example:
    >>> from jobtrail._sql_cli import cmd_sql
    >>> sql = "SELECT status, count(*) FROM jobs GROUP BY ALL"
    >>> cmd_sql("http://127.0.0.1:8080", sql)  # doctest: +SKIP
    0
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from jobtrail.client import ApiClient, ApiError, ApiUnreachable, _api_error, report_error

#: Above the server's default 30 s query timeout, so the server's answer arrives first.
_DEFAULT_TIMEOUT_S = 60.0
FORMATS = ("table", "json", "csv", "parquet")


def post_sql(
    api: ApiClient,
    sql: str,
    *,
    params: Sequence[Any] = (),
    limit: int | None = None,
    fmt: str = "json",
) -> bytes:
    """``POST /api/sql`` with ``?format=fmt``; the response body as bytes.

    Raises:
        ApiError: The API answered with an error (``invalid_sql``, ``query_timeout``, ...).
        ApiUnreachable: No answer.
    """
    body: dict[str, Any] = {"sql": sql}
    if params:
        body["params"] = list(params)
    if limit is not None:
        body["limit"] = limit
    url = f"{api.base_url}/api/sql?{urllib.parse.urlencode({'format': fmt})}"
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    if api.token:
        request.add_header("Authorization", f"Bearer {api.token}")
    try:
        with urllib.request.urlopen(request, timeout=api.timeout_s) as response:  # noqa: S310
            data: bytes = response.read()
            return data
    except urllib.error.HTTPError as exc:
        raise _api_error(exc) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiUnreachable(f"cannot reach the jobtrail API at {api.base_url}: {reason}") from None


def parse_param(text: str) -> Any:
    """A ``--param`` value: JSON when it parses (``42``, ``true``, ``null``), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _cell(value: Any) -> Text:
    if value is None:
        return Text("null", style="dim")
    if isinstance(value, dict | list):
        return Text(json.dumps(value, ensure_ascii=False))
    if isinstance(value, bool):
        return Text("true" if value else "false")
    return Text(str(value))


def render_result(console: Console, result: dict[str, Any]) -> None:
    """The rows as a table, then how many, how long, and whether the limit cut them."""
    table = Table(header_style="bold")
    for name, kind in zip(result["columns"], result["types"], strict=True):
        numeric = any(w in kind for w in ("INT", "DOUBLE", "FLOAT", "DECIMAL"))
        table.add_column(Text(name), justify="right" if numeric else "left", overflow="fold")
    for row in result["rows"]:
        table.add_row(*(_cell(v) for v in row))
    console.print(table)
    count = len(result["rows"])
    note = f"{count} row{'s' if count != 1 else ''} in {result['elapsed_ms']:.1f} ms"
    if result["truncated"]:
        note += f" (truncated at {count}: raise --limit)"
    console.print(Text(note, style="dim"))


def cmd_sql(
    base_url: str,
    sql: str,
    *,
    params: Sequence[Any] = (),
    limit: int | None = None,
    fmt: str = "table",
    output: str | None = None,
    console: Console | None = None,
    token: str | None = None,
    timeout_s: float = _DEFAULT_TIMEOUT_S,
) -> int:
    """Run one read-only SELECT and print the rows (``POST /api/sql``).

    Args:
        base_url: The API's base URL.
        sql: One SELECT statement (``-`` reads it from standard input).
        params: Values for ``?`` / ``$1`` placeholders.
        limit: Most rows (server default 1000, at most 100000).
        fmt: ``table`` (rich), ``json`` (the API's JSON), ``csv`` or ``parquet``.
        output: Write the result to this file instead of printing it (required for
            ``parquet``).
        console: Where to print (tests); default stdout.
        token: Bearer token (default ``$JOBTRAIL_TOKEN``).
        timeout_s: HTTP timeout.

    Returns:
        0 on success, 1 on an API error (rejected SQL, timeout), 2 when unreachable or the
        arguments do not fit together.
    """
    out = console or Console()
    if fmt not in FORMATS:
        print(f"jobtrail: unknown format {fmt!r} (expected {', '.join(FORMATS)})", file=sys.stderr)
        return 2
    if fmt == "parquet" and output is None:
        print("jobtrail: --format parquet needs --output FILE", file=sys.stderr)
        return 2
    if fmt == "table" and output is not None:
        print("jobtrail: --output needs --format json, csv or parquet", file=sys.stderr)
        return 2
    if sql == "-":
        sql = sys.stdin.read()
    api = ApiClient(base_url, token=token, timeout_s=timeout_s)
    wire = "json" if fmt == "table" else fmt
    try:
        data = post_sql(api, sql, params=params, limit=limit, fmt=wire)
    except (ApiError, ApiUnreachable) as exc:
        return report_error(exc)
    if output is not None:
        Path(output).write_bytes(data)
        return 0
    if fmt == "table":
        render_result(out, json.loads(data))
    elif fmt == "json":
        out.file.write(json.dumps(json.loads(data), indent=2, ensure_ascii=False) + "\n")
    else:
        out.file.write(data.decode())
    return 0
