"""A corrupt or foreign database file: one clear line naming it, no traceback, never touched.

``jobtrail serve --db FILE`` runs (as a real process) on files that are not jobtrail
databases, or no longer readable ones. It must exit non-zero with a single line on stderr
that names the file, and leave every byte of the file (and of its write-ahead log and its
directory) as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from jobtrail.storage import Database

pytestmark = pytest.mark.e2e


def _random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(256 * 1024))


def _empty(path: Path) -> None:
    path.touch()


def _directory(path: Path) -> None:
    path.mkdir()
    (path / "keep.txt").write_text("a file the user keeps here\n")


def _foreign_duckdb(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE invoices AS SELECT range AS id, 'paid' AS status FROM range(1000)")
    con.close()


def _foreign_duckdb_with_wal(path: Path) -> None:
    """Unrelated tables whose last commits are still only in the write-ahead log: opening
    it read-write and closing would merge the log into the file."""
    code = f"""
        import duckdb, os
        con = duckdb.connect({str(path)!r})
        con.execute("CREATE TABLE invoices AS SELECT range AS id FROM range(10)")
        con.execute("CHECKPOINT")
        con.execute("PRAGMA disable_checkpoint_on_shutdown")
        con.execute("INSERT INTO invoices SELECT range FROM range(10, 20)")
        os._exit(0)
    """
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=True)
    assert Path(f"{path}.wal").exists()


def _sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (a)")
    con.commit()
    con.close()


def _jobtrail_db(path: Path) -> None:
    Database(path).close()


def _truncated(path: Path) -> None:
    _jobtrail_db(path)
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 3)


def _flipped_blocks(path: Path) -> None:
    _jobtrail_db(path)
    data = bytearray(path.read_bytes())
    for i in range(8192, len(data), 97):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _newer_schema(path: Path) -> None:
    _jobtrail_db(path)
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO jobtrail_schema VALUES (99, now()::TIMESTAMP)")
    con.close()


def _parent_is_a_file(path: Path) -> None:
    path.parent.parent.joinpath("not-a-dir").write_text("x")


HOLDERS: list[subprocess.Popen[str]] = []


def _held_by_another_server(path: Path) -> None:
    """A jobtrail database another process has open for writing (DuckDB's file lock)."""
    _jobtrail_db(path)
    code = f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('ok', flush=True); time.sleep(120)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
    HOLDERS.append(holder)


CASES: dict[str, tuple[str, Callable[[Path], None]]] = {
    # name: (database path inside the case's directory, how to make it)
    "random bytes": ("jobs.duckdb", _random_bytes),
    "empty file": ("jobs.duckdb", _empty),
    "directory": ("jobs.duckdb", _directory),
    "foreign duckdb": ("jobs.duckdb", _foreign_duckdb),
    "foreign duckdb with pending WAL": ("jobs.duckdb", _foreign_duckdb_with_wal),
    "sqlite database": ("jobs.duckdb", _sqlite),
    "truncated jobtrail database": ("jobs.duckdb", _truncated),
    "corrupt blocks": ("jobs.duckdb", _flipped_blocks),
    "newer jobtrail schema": ("jobs.duckdb", _newer_schema),
    "parent is a file": ("not-a-dir/jobs.duckdb", _parent_is_a_file),
    "held by another server": ("jobs.duckdb", _held_by_another_server),
}


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and directory under ``root`` with a hash of its bytes."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@dataclass
class Outcome:
    db: str
    code: int
    stdout: str
    stderr: str
    before: dict[str, str]
    after: dict[str, str]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Run ``jobtrail serve`` on every case at once (each in its own directory)."""
    root = tmp_path_factory.mktemp("corrupt")
    running = {}
    for i, (name, (rel, make)) in enumerate(CASES.items()):
        case_dir = root / f"case{i}" / "data"
        case_dir.mkdir(parents=True)
        db = case_dir / rel
        make(db)
        before = _snapshot(case_dir.parent)
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobtrail", "serve", "--db", str(db), "--grpc-port", "0",
             "--http-port", "0", "--api-port", "0", "--ready-file", str(root / f"ready{i}.json")],
            cwd=case_dir.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        running[name] = (proc, db, case_dir.parent, before, root / f"ready{i}.json")
    results = {}
    deadline = time.monotonic() + 60
    for name, (proc, db, case_root, before, ready) in running.items():
        while proc.poll() is None and not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:  # it started serving (or hung): that is a failure too
            proc.kill()
        out, err = proc.communicate(timeout=30)
        results[name] = Outcome(str(db), proc.returncode, out, err, before, _snapshot(case_root))
    for holder in HOLDERS:
        holder.kill()
        holder.communicate()
    shutil.rmtree(root, ignore_errors=True)
    return results


@pytest.mark.parametrize("case", list(CASES))
def test_refused_with_one_line_naming_the_file_and_left_untouched(
    outcomes: dict[str, Outcome], case: str
) -> None:
    result = outcomes[case]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    print(f"\n{case}: exit {result.code}: {lines[-1] if lines else '(nothing)'}")
    assert result.code not in (0, None) and result.code > 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert len(lines) == 1, result.stderr
    assert result.db in lines[0], f"the line does not name {result.db}: {lines[0]}"
    assert result.after == result.before, "the file or its directory changed"
    if case == "held by another server":
        assert "locked by another process" in lines[0]
    elif case in ("corrupt blocks", "truncated jobtrail database"):
        assert "damaged or truncated" in lines[0]
