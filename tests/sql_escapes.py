"""The SQL escape attempts every read-only SQL route must reject, with the reason it names.

Shared by the embedded database's tests and the lake's, so both refuse the same list.
"""

from __future__ import annotations

ONLY_SELECT = "only SELECT statements are allowed"
SINGLE = "expected a single statement"
TABLE_FN = "is not allowed: only"
FUNCTION = "is not allowed: it changes state"
FILE = "looks like a file or URL"

#: (sql, words the 400 must contain). ``{tmp}`` is the test's temporary directory.
ESCAPES: list[tuple[str, str]] = [
    # COPY ... TO / FROM
    ("COPY jobs TO '{tmp}/jobs.csv'", ONLY_SELECT),
    ("COPY (SELECT * FROM logs) TO '{tmp}/logs.parquet' (FORMAT parquet)", ONLY_SELECT),
    ("COPY jobs FROM '/etc/passwd'", ONLY_SELECT),
    # ATTACH / DETACH / USE
    ("ATTACH '{tmp}/other.duckdb' AS other", ONLY_SELECT),
    ("ATTACH ':memory:' AS scratch", ONLY_SELECT),
    ("DETACH scratch", ONLY_SELECT),
    ("USE system", ONLY_SELECT),
    # reading files, of any path
    ("SELECT * FROM read_csv('/etc/passwd')", TABLE_FN),
    ("SELECT * FROM read_csv_auto('{tmp}/db.duckdb')", TABLE_FN),
    ("SELECT * FROM read_text('/etc/hostname')", TABLE_FN),
    ("SELECT content FROM read_blob('{tmp}/db.duckdb')", TABLE_FN),
    ("SELECT * FROM glob('/*')", TABLE_FN),
    ("SELECT * FROM glob('*')", TABLE_FN),
    ("SELECT * FROM read_parquet('x.parquet')", TABLE_FN),
    ("SELECT * FROM parquet_scan('x.parquet')", TABLE_FN),
    ("SELECT * FROM read_json('x.json')", TABLE_FN),
    ("SELECT * FROM sniff_csv('/etc/passwd')", TABLE_FN),
    ("SELECT * FROM main.READ_TEXT('/etc/passwd')", TABLE_FN),
    ("SELECT (SELECT count(*) FROM read_text('/etc/passwd')) AS n", TABLE_FN),
    ("WITH f AS (SELECT * FROM read_text('/etc/passwd')) SELECT * FROM f", TABLE_FN),
    ("SELECT * FROM jobs WHERE id IN (SELECT content FROM read_text('/etc/passwd'))", TABLE_FN),
    ("SUMMARIZE SELECT * FROM read_csv('/etc/passwd')", TABLE_FN),
    ("SELECT * FROM '/etc/passwd'", FILE),
    ("FROM 'jobs.csv'", FILE),
    ("SELECT * FROM 'https://example.com/data.parquet'", FILE),
    ("DESCRIBE '/etc/passwd'", FILE),
    # INSTALL / LOAD
    ("INSTALL httpfs", ONLY_SELECT),
    ("FORCE INSTALL httpfs", ONLY_SELECT),
    ("LOAD httpfs", ONLY_SELECT),
    ("LOAD '{tmp}/evil.duckdb_extension'", ONLY_SELECT),
    # SET / RESET / PRAGMA
    ("SET threads = 1", ONLY_SELECT),
    ("SET enable_external_access = true", ONLY_SELECT),
    ("SET GLOBAL lock_configuration = false", ONLY_SELECT),
    ("RESET threads", ONLY_SELECT),
    ("SET VARIABLE x = 1", ONLY_SELECT),
    ("PRAGMA threads = 1", ONLY_SELECT),
    ("PRAGMA enable_profiling", ONLY_SELECT),
    ("SELECT current_setting('threads')", FUNCTION),
    ("SELECT * FROM duckdb_settings()", TABLE_FN),
    ("SELECT * FROM pragma_database_size()", TABLE_FN),
    ("SELECT * FROM enable_logging()", TABLE_FN),
    ("SELECT * FROM duckdb_secrets()", TABLE_FN),
    # EXPORT / IMPORT DATABASE
    ("EXPORT DATABASE '{tmp}/dump'", ONLY_SELECT),
    ("EXPORT DATABASE '{tmp}/dump' (FORMAT parquet)", ONLY_SELECT),
    ("IMPORT DATABASE '{tmp}/dump'", ONLY_SELECT),
    # CREATE / INSERT / UPDATE / DELETE / DROP and friends
    ("CREATE TABLE evil (a INTEGER)", ONLY_SELECT),
    ("CREATE TEMP TABLE evil AS SELECT * FROM jobs", ONLY_SELECT),
    ("CREATE OR REPLACE VIEW active_jobs AS SELECT 1", ONLY_SELECT),
    ("CREATE MACRO evil() AS 1", ONLY_SELECT),
    ("CREATE SEQUENCE evil_seq", ONLY_SELECT),
    ("INSERT INTO jobs (id, status) VALUES ('evil', 'failed')", ONLY_SELECT),
    ("INSERT INTO jobs (id, status) SELECT 'evil', 'failed' RETURNING *", ONLY_SELECT),
    ("UPDATE jobs SET status = 'failed'", ONLY_SELECT),
    ("DELETE FROM logs", ONLY_SELECT),
    ("TRUNCATE logs", ONLY_SELECT),
    ("DROP TABLE jobs", ONLY_SELECT),
    ("DROP VIEW active_jobs", ONLY_SELECT),
    ("ALTER TABLE jobs ADD COLUMN evil INTEGER", ONLY_SELECT),
    ("VACUUM", ONLY_SELECT),
    ("CALL checkpoint()", ONLY_SELECT),
    ("BEGIN TRANSACTION", ONLY_SELECT),
    ("EXPLAIN ANALYZE SELECT * FROM jobs", ONLY_SELECT),
    # sequences and other state
    ("SELECT nextval('escape_seq')", FUNCTION),
    ("SELECT id, nextval('escape_seq') FROM jobs", FUNCTION),
    ("SELECT list_transform([1, 2], x -> nextval('escape_seq'))", FUNCTION),
    ("SELECT setval('escape_seq', 100)", FUNCTION),
    ("SELECT setseed(0.5)", FUNCTION),
    ("SELECT write_log('x')", FUNCTION),
    ("SELECT sleep_ms(100000)", FUNCTION),
    ("SELECT json_serialize_plan('SELECT 1')", FUNCTION),
    # checkpoint()
    ("SELECT * FROM checkpoint()", TABLE_FN),
    ("SELECT * FROM force_checkpoint()", TABLE_FN),
    ("CHECKPOINT", ONLY_SELECT),
    ("FORCE CHECKPOINT", ONLY_SELECT),
    # several statements in one string
    ("SELECT 1; DROP TABLE jobs", SINGLE),
    ("SELECT 1; SELECT 2", SINGLE),
    ("SELECT * FROM jobs;\nDELETE FROM logs;", SINGLE),
    ("SELECT 1 /* ; */; DROP TABLE jobs -- ;", SINGLE),
    # WITH ... INSERT
    (
        "WITH x AS (SELECT 1) INSERT INTO jobs (id, status) SELECT 'evil', 'failed' FROM x",
        ONLY_SELECT,
    ),
    ("WITH x AS (SELECT 1) DELETE FROM jobs", ONLY_SELECT),
    ("WITH x AS (SELECT 1) UPDATE jobs SET status = 'failed'", ONLY_SELECT),
    # SQL in a string, Python objects by name
    ("SELECT * FROM query('DROP TABLE jobs')", TABLE_FN),
    ("SELECT * FROM query_table('secret_frame')", TABLE_FN),
    ("SELECT * FROM json_execute_serialized_sql('{{}}')", TABLE_FN),
    ("SELECT * FROM secret_frame", "secret_frame"),
    ("SELECT * FROM python_map_function('secret_frame')", TABLE_FN),
    ("SELECT * FROM arrow_scan(1, 2, 3)", TABLE_FN),
]
