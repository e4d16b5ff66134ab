"""Row lookups by literal key lists: quoting must keep any id intact."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from jobtrail.storage import Database
from jobtrail.storage._row_access import RowAccess, sql_strings, upsert_log_ranges

ODD_IDS = ["o'brien", "back\\slash", "semi; DROP TABLE jobs; --", "ünïcode", "'"]


def test_sql_strings_doubles_quotes_and_refuses_nul() -> None:
    assert sql_strings(["a'b", "c"]) == "'a''b', 'c'"
    assert sql_strings(["ok", "nul\x00"]) is None
    assert sql_strings([]) is None


def _job_rows(ids: list[str], status: str) -> pa.Table:
    """What the writer hands over: at least the columns the search text is made of."""
    return pa.table(
        {
            "id": ids,
            "name": [f"Import {i}" for i in ids],
            "type": ["t"] * len(ids),
            "error": pa.nulls(len(ids), pa.string()),
            "status": [status] * len(ids),
        }
    )


def test_odd_job_ids_are_found_and_replaced(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.duckdb")
    con = db.con.cursor()
    con.execute("INSERT INTO jobs (id, type, status) SELECT unnest(?), 't', 'running'", [ODD_IDS])
    access = RowAccess(con)
    found = access.jobs([*ODD_IDS, "absent"])
    assert sorted(found) == sorted(ODD_IDS)
    rows = _job_rows(ODD_IDS, "completed")
    access.write("jobs", rows, {job_id: job_id for job_id in ODD_IDS})
    stored = con.execute("SELECT id, status, search_text FROM jobs ORDER BY id").fetchall()
    assert stored == sorted(
        (job_id, "completed", f"import {job_id}\n{job_id}\nt".lower()) for job_id in ODD_IDS
    )
    assert con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'jobs'"
    ).fetchone() == (1,)
    db.close()


def test_a_job_id_with_nul_is_replaced_without_a_literal_list(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.duckdb")
    con = db.con.cursor()
    ids = ["plain", "nul\x00id"]
    con.execute("INSERT INTO jobs (id, type, status) SELECT unnest(?), 't', 'running'", [ids])
    access = RowAccess(con)
    assert sorted(access.jobs(ids)) == sorted(ids)
    rows = _job_rows(ids, "failed")
    access.write("jobs", rows, {job_id: job_id for job_id in ids})
    stored = con.execute("SELECT id, status FROM jobs ORDER BY id").fetchall()
    assert stored == sorted((job_id, "failed") for job_id in ids)
    db.close()


def _step_rows(keys: list[tuple[str, str, str]], status: str) -> pa.Table:
    return pa.table(
        {
            "trace_id": [k[0] for k in keys],
            "span_id": [k[1] for k in keys],
            "job_id": [k[2] for k in keys],
            "name": ["step"] * len(keys),
            "status": [status] * len(keys),
        }
    )


def test_a_step_taken_for_stored_but_missing_is_inserted(tmp_path: Path) -> None:
    """If the linker believes a row is stored and it is not, the update touches fewer rows
    than given and the rows are written by delete and insert instead (nothing lost)."""
    db = Database(tmp_path / "db.duckdb")
    con = db.con.cursor()
    con.execute(
        "INSERT INTO steps (trace_id, span_id, job_id, status) VALUES ('t', 'a', 'j', 'running')"
    )
    rows = _step_rows([("t", "a", "j"), ("t", "ghost", "j")], "completed")
    RowAccess(con).write("steps", rows, {("t", "a"): "j", ("t", "ghost"): "j"})
    got = con.execute("SELECT span_id, status FROM steps ORDER BY ALL").fetchall()
    assert got == [("a", "completed"), ("ghost", "completed")]
    db.close()


@pytest.mark.parametrize("moved", [False, True], ids=["in-place", "moved-to-another-job"])
def test_steps_are_replaced_by_their_exact_key(tmp_path: Path, moved: bool) -> None:
    """Only the (trace, span) pairs given are rewritten, not every mix of their parts,
    whether updated in place or (their job changed) deleted and inserted."""
    db = Database(tmp_path / "db.duckdb")
    con = db.con.cursor()
    stored = [
        ("t1", "s1", "j1"),
        ("t1", "s2", "j1"),
        ("t2", "s1", "j1"),  # the same span id in the job's other trace (a retry)
        ("t2", "s2", "j1"),
        ("t3", "s1", "j2"),
        ("t/4", "s1", "j2"),  # no hex id has a '/', but a key with one must still work
    ]
    con.register("_s", _step_rows(stored, "running"))
    con.execute("INSERT INTO steps BY NAME SELECT * FROM _s")
    con.unregister("_s")
    access = RowAccess(con)
    new_job = "j9" if moved else None
    for replaced in ([("t1", "s1", "j1"), ("t2", "s2", "j1")], [("t/4", "s1", "j2")]):
        keys = {(t, s): job for t, s, job in replaced}
        written = [(t, s, new_job or job) for t, s, job in replaced]
        access.write("steps", _step_rows(written, "completed"), keys)  # type: ignore[arg-type]
    rows = con.execute(
        "SELECT trace_id, span_id, job_id, status FROM steps ORDER BY ALL"
    ).fetchall()
    assert rows == [
        ("t/4", "s1", new_job or "j2", "completed"),
        ("t1", "s1", new_job or "j1", "completed"),
        ("t1", "s2", "j1", "running"),
        ("t2", "s1", "j1", "running"),
        ("t2", "s2", new_job or "j1", "completed"),
        ("t3", "s1", "j2", "running"),
    ]
    db.close()


@pytest.mark.parametrize("large", [False, True], ids=["on-conflict", "read-delete-insert"])
def test_log_ranges_only_widen(tmp_path: Path, large: bool) -> None:
    db = Database(tmp_path / "db.duckdb")
    con = db.con.cursor()
    stored = [("a", 10, 20), ("b", 30, 40), ("untouched", 1, 2), ("o'brien", 5, 6)]
    con.executemany("INSERT INTO job_log_ranges VALUES (?, ?, ?)", stored)
    ranges = pa.table(
        {
            "job_id": ["a", "b", "new", "o'brien"],
            "lo": pa.array([15, 25, 50, 7], pa.int64()),
            "hi": pa.array([25, 35, 60, 9], pa.int64()),
        }
    )
    upsert_log_ranges(con, ranges, large=large)
    rows = {j: (lo, hi) for j, lo, hi in con.execute("SELECT * FROM job_log_ranges").fetchall()}
    assert rows == {
        "a": (10, 25),  # hi widened, lo kept
        "b": (25, 40),  # lo widened, hi kept
        "untouched": (1, 2),
        "o'brien": (5, 9),
        "new": (50, 60),
    }
