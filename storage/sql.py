"""Ad-hoc read-only SQL: check a user's statement, then run it with a row and a time limit.

Users ask their own questions of their job history (``POST /api/sql``, ``jobtrail sql``).
The SQL must be powerful for honest questions and useless for attacks, so three layers
stand between it and the database, each enough on its own for most attacks:

1. :func:`check_sql` parses the text with DuckDB's own parser. It accepts exactly one
   statement, of type SELECT (``WITH ... SELECT``, ``FROM t``, ``VALUES``, ``DESCRIBE``,
   ``SUMMARIZE`` and ``SHOW`` parse as SELECT; ``WITH ... INSERT`` does not). It then walks
   the parsed tree (``json_serialize_sql``) and checks every function and table reference:

   * **Table functions are denied by default**: only those in :data:`ALLOWED_TABLE_FUNCTIONS`
     (row generators, JSON unnesting and catalog introspection) may appear in ``FROM``.
     Everything else — ``read_csv``/``read_text``/``read_parquet``/``glob`` and any other
     file or URL reader, ``query``/``query_table`` (SQL in a string), ``checkpoint``,
     ``pragma_*``, ``duckdb_secrets``/``duckdb_settings``, logging switches, and whatever a
     future DuckDB adds — is rejected without having to be known.
   * **Scalar functions are allowed by default** (DuckDB has about a thousand and they
     compute values), except :data:`DENIED_FUNCTIONS`: those that change state
     (``nextval``, ``setval``, ``setseed``, ``write_log``), read settings
     (``current_setting``), plan SQL given as text (``json_serialize_plan``), sleep, or are
     DuckDB internals (``__internal_*``). Names are ASCII only.
   * A table name that looks like a file or URL (``FROM 'x.csv'``: a replacement scan) is
     rejected.

2. :func:`run_sql` runs the statement inside ``BEGIN TRANSACTION READ ONLY`` on a cursor of
   its own, so anything that would write (a sequence, a table) fails even if it passed the
   check, and the cursor's transaction is thrown away afterwards.

3. The instance itself (:class:`~jobtrail.storage.Database`) is opened with external
   access disabled, extension autoinstall/autoload and community extensions off, Python
   replacement scans off and the configuration locked — so no file, network, extension,
   Python object or setting is reachable whatever the SQL says.

Results are capped at ``limit`` rows (fetched as a stream, so a huge result is never
materialised) and ``timeout_s`` seconds (a timer calls ``cursor.interrupt()``).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from jobtrail.storage._query_model import InvalidParameter, QueryError
from jobtrail.storage._sql_values import arrow_table, json_row

#: Table functions a query may use in ``FROM``; every other one is rejected.
ALLOWED_TABLE_FUNCTIONS = frozenset(
    {
        "range", "generate_series", "unnest", "json_each", "json_tree",
        "duckdb_tables", "duckdb_columns", "duckdb_views", "duckdb_types", "duckdb_schemas",
        "duckdb_constraints", "duckdb_functions", "duckdb_keywords",
    }
)  # fmt: skip

#: Scalar/aggregate functions that are rejected (everything else computes a value).
DENIED_FUNCTIONS = frozenset(
    {
        "nextval", "setval", "setseed", "write_log", "current_setting", "json_serialize_plan",
        "sleep_ms", "pg_sleep", "checkpoint", "force_checkpoint",
    }
)  # fmt: skip
_DENIED_PREFIXES = ("__internal", "pragma_", "read_")

#: Longest SQL text accepted (the parser and the tree walk are linear in it).
MAX_SQL_CHARS = 100_000
#: A table name with one of these is a file path or URL, read by a replacement scan.
_PATH_LIKE = re.compile(r"[./\\:]")
_ASCII_NAME = re.compile(r"[\x21-\x7e]+")
#: A DuckLake attaches its catalog database under this prefix (PostgreSQL, on a lake).
_CATALOG_DB = "__ducklake_metadata"
_ZONED = "WITH TIME ZONE"


class SqlTimeout(QueryError):
    """The statement ran longer than its time limit and was interrupted (HTTP 503)."""

    def __init__(self, *, timeout_s: float) -> None:
        super().__init__(f"query took longer than {timeout_s:g}s and was interrupted")
        self.timeout_s = timeout_s


@dataclass(frozen=True, kw_only=True, slots=True)
class SqlResult:
    """What a statement returned.

    Attributes:
        columns: Column names, in order (may repeat, as in ``SELECT 1 AS a, 2 AS a``).
        types: DuckDB type of each column (``VARCHAR``, ``TIMESTAMP``, ``JSON``, ...).
        rows: JSON-ready rows (see :func:`jobtrail.storage._sql_values.json_value`); empty
            when the result was asked for as ``arrow``.
        elapsed_ms: Wall time of execute and fetch.
        truncated: More rows existed than ``limit``; only the first ``limit`` are here.
        arrow: The rows as an Arrow table when asked for (``as_arrow=True``), else None.
    """

    columns: list[str]
    types: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    elapsed_ms: float
    truncated: bool
    arrow: pa.Table | None = None


class SqlInterrupter:
    """Interrupts the statement :func:`run_sql` is running, from any thread.

    Pass one to :func:`run_sql` to stop it early (the request went away, an outer timeout
    fired); interrupting before it starts or after it ended does nothing harmful.
    """

    __slots__ = ("_cursor", "_done", "_lock", "fired")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cursor: duckdb.DuckDBPyConnection | None = None
        self._done = False
        self.fired = False

    def attach(self, cursor: duckdb.DuckDBPyConnection) -> None:
        with self._lock:
            self._cursor = cursor
            if self.fired:
                cursor.interrupt()

    def detach(self) -> None:
        with self._lock:
            self._done = True
            self._cursor = None

    def interrupt(self) -> None:
        """Stop the statement (idempotent)."""
        with self._lock:
            if self._done:
                return
            self.fired = True
            if self._cursor is not None:
                try:
                    self._cursor.interrupt()
                except duckdb.Error:
                    pass


# --- checking ------------------------------------------------------------------------------

_parser_lock = threading.Lock()
_parser: duckdb.DuckDBPyConnection | None = None


def _parser_connection() -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB used only to parse (never sees jobtrail's data)."""
    global _parser
    if _parser is None:
        _parser = duckdb.connect(
            ":memory:",
            config={
                "enable_external_access": False,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "python_enable_replacements": False,
                "lock_configuration": True,
            },
        )
    return _parser


def _reject(message: str) -> InvalidParameter:
    return InvalidParameter(message, name="sql")


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object of the parsed tree (iterative: no recursion limit to hit)."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _function_name(node: Mapping[str, Any]) -> str:
    name = node.get("function_name")
    if not isinstance(name, str) or not _ASCII_NAME.fullmatch(name):
        raise _reject(f"function name {name!r} is not allowed")
    return name.lower()


def _check_tree(tree: Any) -> None:
    for node in _nodes(tree):
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            name = _function_name(node.get("function") or {})
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise _reject(
                    f"table function {name}() is not allowed: only "
                    f"{', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))} may be used in FROM"
                )
        if "function_name" in node:
            name = _function_name(node)
            if name in DENIED_FUNCTIONS or name.startswith(_DENIED_PREFIXES):
                raise _reject(
                    f"function {name}() is not allowed: it changes state, reads settings or "
                    "files, or is internal to DuckDB"
                )
        table = node.get("table_name")
        if kind in ("BASE_TABLE", "SHOW_REF") and isinstance(table, str):
            if _PATH_LIKE.search(table.strip('"')):
                raise _reject(
                    f"{table!r} looks like a file or URL; only jobtrail's tables and views "
                    "can be read"
                )
            qualifiers = (node.get("catalog_name"), node.get("schema_name"))
            if any(isinstance(q, str) and q.lower().startswith(_CATALOG_DB) for q in qualifiers):
                raise _reject(
                    f"{table!r} is in a lake's catalog database; only jobtrail's tables and "
                    "views can be read"
                )


def check_sql(sql: str) -> None:
    """Accept a single read-only SELECT statement, or raise saying why not.

    Raises:
        InvalidParameter: (``name="sql"``) the text is empty or too long, does not parse, is
            several statements, is not a SELECT, or uses a forbidden function or a file.

    Example:
        >>> check_sql("SELECT type, count(*) FROM jobs GROUP BY type")
        >>> check_sql("SELECT * FROM read_csv('/etc/passwd')")
        Traceback (most recent call last):
        ...
        jobtrail.storage._query_model.InvalidParameter: sql: table function read_csv() ...
    """
    if not isinstance(sql, str) or not sql.strip():
        raise _reject("expected a SELECT statement")
    if len(sql) > MAX_SQL_CHARS:
        raise _reject(f"longer than {MAX_SQL_CHARS} characters")
    with _parser_lock:
        con = _parser_connection()
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            # Some statements (IMPORT DATABASE) touch files while being parsed; name the
            # statement rather than the file error they run into.
            keyword = _first_keyword(sql)
            parse_error = isinstance(exc, duckdb.ParserException)
            if keyword and not parse_error and keyword not in _QUERY_KEYWORDS:
                raise _reject(_NOT_SELECT.format(kind=keyword)) from None
            raise _reject(_first_line(exc)) from None
        if len(statements) != 1:
            raise _reject(
                f"expected a single statement, got {len(statements)}; "
                "only one SELECT statement can be run at a time"
            )
        kind = statements[0].type
        if kind != duckdb.StatementType.SELECT:
            raise _reject(_NOT_SELECT.format(kind=kind.name))
        row = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    tree = orjson.loads(row[0]) if row else {"error": True}
    if tree.get("error"):
        raise _reject(str(tree.get("error_message") or "cannot be analysed; not a plain SELECT"))
    _check_tree(tree["statements"])


_NOT_SELECT = (
    "only SELECT statements are allowed (this is {kind}); "
    "the database is read-only through this interface"
)
_QUERY_KEYWORDS = frozenset({"SELECT", "WITH", "FROM", "VALUES", "TABLE", "PIVOT", "UNPIVOT"})
_LEADING_NOISE = re.compile(r"(?:\s+|--[^\n]*\n?|/\*.*?\*/|\()*", re.S)


def _first_keyword(sql: str) -> str:
    """The statement's first word, past whitespace, comments and parentheses."""
    rest = sql[_LEADING_NOISE.match(sql).end() :]  # type: ignore[union-attr]
    word = re.match(r"[A-Za-z_]+", rest)
    return word.group(0).upper() if word else ""


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# --- running -------------------------------------------------------------------------------

#: DuckDB errors that are the server's fault, not the statement's.
_SERVER_ERRORS = (duckdb.InternalException, duckdb.FatalException)


def run_sql(
    cur: duckdb.DuckDBPyConnection,
    sql: str,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
    *,
    limit: int,
    timeout_s: float,
    as_arrow: bool = False,
    interrupter: SqlInterrupter | None = None,
) -> SqlResult:
    """Check ``sql`` and run it read-only with bound ``params``; at most ``limit`` rows.

    Args:
        cur: A cursor of the database; the statement runs on a new cursor made from it.
        sql: One SELECT statement (see :func:`check_sql`).
        params: Values for ``?``/``$1`` (a list) or ``$name`` (a mapping) placeholders.
        limit: Most rows returned; ``truncated`` says whether there were more.
        timeout_s: Longest the statement may run before it is interrupted.
        as_arrow: Return the rows as an Arrow table (``arrow``) instead of JSON-ready rows.
        interrupter: Lets another thread stop the statement early.

    Raises:
        InvalidParameter: (``name="sql"``) rejected by :func:`check_sql`, or DuckDB refused
            it (syntax, unknown column, type error, permission); the message is DuckDB's.
        SqlTimeout: It ran longer than ``timeout_s`` (or ``interrupter`` fired).

    Example:
        >>> run_sql(db.cursor(), "SELECT id FROM jobs WHERE status = ?", ["failed"],
        ...         limit=100, timeout_s=10).rows  # doctest: +SKIP
        [['a1b2c3d4e5f60718']]
    """
    if limit < 1 or timeout_s <= 0:
        raise ValueError("limit and timeout_s must be positive")
    check_sql(sql)
    interrupter = interrupter or SqlInterrupter()
    own = cur.cursor()
    timer = threading.Timer(timeout_s, interrupter.interrupt)
    timer.daemon = True
    started = time.perf_counter()
    try:
        interrupter.attach(own)
        if interrupter.fired:  # stopped before it started
            raise SqlTimeout(timeout_s=timeout_s)
        own.execute("BEGIN TRANSACTION READ ONLY")
        timer.start()
        values = _params(params)
        own.execute(sql, values)
        description = own.description or []
        if any(_ZONED in str(d[1]) for d in description):
            in_utc = _in_utc(sql, description)
            check_sql(in_utc)  # the wrapper only adds casts; checked all the same
            own.execute(in_utc, values)
        rows = own.fetchmany(limit + 1)
        elapsed_ms = (time.perf_counter() - started) * 1000
    except duckdb.InterruptException:
        raise SqlTimeout(timeout_s=timeout_s) from None
    except _SERVER_ERRORS:
        raise
    except duckdb.Error as exc:
        if interrupter.fired:
            raise SqlTimeout(timeout_s=timeout_s) from None
        raise _reject(_first_line(exc)) from None
    finally:
        timer.cancel()
        interrupter.detach()
        try:
            own.close()  # discards the read-only transaction and any unread rows
        except duckdb.Error:
            pass
    truncated = len(rows) > limit
    rows = rows[:limit]
    columns = [str(d[0]) for d in description]
    duck_types = [d[1] for d in description]
    types = [str(t) for t in duck_types]
    if as_arrow:
        table = arrow_table(columns, duck_types, rows)
        return SqlResult(
            columns=columns, types=types, elapsed_ms=elapsed_ms, truncated=truncated, arrow=table
        )
    json_rows = [json_row(row, types) for row in rows]
    return SqlResult(
        columns=columns, types=types, rows=json_rows, elapsed_ms=elapsed_ms, truncated=truncated
    )


def _in_utc(sql: str, description: Sequence[Any]) -> str:
    """``sql`` wrapped so zoned timestamps come back as UTC (fetching them needs ``pytz``).

    A top-level ``TIMESTAMP WITH TIME ZONE`` becomes a UTC ``TIMESTAMP``; a ``TIME WITH TIME
    ZONE`` or a nested zoned value becomes its text. Columns are renamed positionally and
    given their names back, so repeated names survive.
    """
    body = sql.rstrip().rstrip(";").rstrip()
    exprs = []
    for index, (name, duck_type, *_) in enumerate(description):
        ref, text = f"c{index}", str(duck_type)
        if text == f"TIMESTAMP {_ZONED}":
            ref = f"timezone('UTC', {ref})"
        elif _ZONED in text:
            ref = f"CAST({ref} AS VARCHAR)"
        quoted = str(name).replace('"', '""')
        exprs.append(f'{ref} AS "{quoted}"')
    aliases = ", ".join(f"c{i}" for i in range(len(description)))
    return f"SELECT {', '.join(exprs)} FROM ({body}\n) AS _jobtrail_q({aliases})"


def _params(params: Sequence[Any] | Mapping[str, Any] | None) -> Any:
    if params is None:
        return None
    if isinstance(params, Mapping):
        return dict(params)
    return list(params)
