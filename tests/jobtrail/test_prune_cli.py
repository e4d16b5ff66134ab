"""``exporters.duckdb.retention`` in the config, and ``jobtrail prune`` on a real file."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from bulk_jobs import BASE, bulk_load

from jobtrail.cli import main
from jobtrail.config import ConfigError, ServerConfig
from jobtrail.storage import Database


def retention(block: str) -> ServerConfig:
    return ServerConfig.from_mapping(
        {"exporters": {"duckdb": {"retention": __import__("yaml").safe_load(block)}}}
    )


def test_retention_block_defaults_and_units() -> None:
    policy = ServerConfig().retention_policy()
    assert policy.max_age_s == 30 * 86400 and policy.interval_s == 3600
    assert policy.logs_max_age_s == policy.max_age_s
    assert policy.max_logs_per_job is None and policy.max_size_bytes is None
    cfg = retention(
        "{max_age: 7d, system_logs_max_age: 12h, max_logs_per_job: 200, max_size: 10GiB, "
        "interval: 15m}"
    )
    policy = cfg.retention_policy()
    assert (policy.max_age_s, policy.logs_max_age_s, policy.interval_s) == (604800, 43200, 900)
    assert policy.max_size_bytes == 10 * 1024**3 and policy.keep_first_last == (100, 100)
    assert retention("{max_size: 500MB}").retention_max_size_bytes == 500_000_000
    assert retention("{max_size: 4096}").retention_max_size_bytes == 4096


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("{max_agee: 30d}", "exporters.duckdb.retention.max_agee: unknown key"),
        ("{max_age: 30 days}", "exporters.duckdb.retention.max_age: expected a duration"),
        ("{max_age: 0s}", "exporters.duckdb.retention.max_age: must be at least 1s"),
        ("{max_size: 10 gigs}", "exporters.duckdb.retention.max_size: expected a size like"),
        ("{max_size: 0GiB}", "exporters.duckdb.retention.max_size: must be > 0"),
        (
            "{max_logs_per_job: 1}",
            "exporters.duckdb.retention.max_logs_per_job: must be at least 2",
        ),
        (
            "{max_logs_per_job: many}",
            "exporters.duckdb.retention.max_logs_per_job: expected a number",
        ),
        (
            "{interval: true}",
            "exporters.duckdb.retention.interval: expected a string, got a boolean",
        ),
    ],
)
def test_bad_retention_settings_name_the_key(block: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        retention(block)


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    """Finished jobs from January 2026 (long past 30 days) and two still running."""
    path = tmp_path / "db.duckdb"
    db = Database(path)
    bulk_load(db.con, prefix="done", jobs=40, first_end=BASE, every_s=60)
    bulk_load(db.con, prefix="busy", jobs=2, first_end=BASE, every_s=1, status="running")
    db.close()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def jobs_left(path: Path) -> int:
    db = Database(path)
    try:
        row = db.con.execute("SELECT count(*) FROM jobs").fetchone()
        assert row is not None
        return int(row[0])
    finally:
        db.close()


def test_dry_run_shows_what_would_go_and_changes_nothing(
    old_db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(old_db.parent)  # no ./otel-config.yaml: the defaults apply
    before = digest(old_db)
    assert main(["prune", "--db", str(old_db), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing changed" in out
    row = next(line for line in out.splitlines() if "finished jobs older than 30d" in line)
    assert row.split()[-5:] == ["40", "40", "800", "160", "0"]
    assert digest(old_db) == before and not old_db.with_suffix(".duckdb.wal").exists()


def test_prune_removes_old_jobs_and_keeps_running_ones(
    old_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("exporters:\n  duckdb:\n    retention:\n      max_logs_per_job: 10\n")
    assert main(["prune", "--db", str(old_db), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "finished jobs older than 30d" in line)
    assert row.split()[-5:] == ["40", "40", "800", "160", "0"]
    cap = next(line for line in out.splitlines() if "logs over the cap" in line)
    assert "(2 jobs)" in cap and cap.split()[-3] == "20", "running jobs' 20 logs capped to 10"
    assert jobs_left(old_db) == 2
    assert main(["prune", "--db", str(old_db), "--config", str(config), "--dry-run"]) == 0
    assert "would remove" in capsys.readouterr().out


def test_prune_refuses_a_file_a_server_holds(old_db: Path) -> None:
    holder = subprocess.Popen(  # another process with the file open, as a server would be
        [
            sys.executable, "-c",
            "import sys; from jobtrail.storage import Database; "
            f"db = Database({str(old_db)!r}); print('open', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        for extra in ([], ["--dry-run"]):
            done = subprocess.run(
                [sys.executable, "-m", "jobtrail", "prune", "--db", str(old_db), *extra],
                capture_output=True, text=True, timeout=60, cwd=old_db.parent, check=False,
            )  # fmt: skip
            assert done.returncode == 1, done.stderr
            assert "Traceback" not in done.stderr
            assert "server" in done.stderr and str(old_db) in done.stderr
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    assert jobs_left(old_db) == 42


def test_missing_file_and_bad_config_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prune", "--db", str(tmp_path / "none.duckdb")]) == 1
    assert "no such database file" in capsys.readouterr().err
    config = tmp_path / "c.yaml"
    config.write_text("exporters:\n  duckdb:\n    retention:\n      max_agee: 1d\n")
    assert main(["prune", "--db", str(tmp_path / "x.duckdb"), "--config", str(config)]) == 2
    assert "exporters.duckdb.retention.max_agee: unknown key" in capsys.readouterr().err
