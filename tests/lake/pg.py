"""A throwaway PostgreSQL cluster for lake tests: initdb, pg_ctl, one database per test.

The cluster listens on a Unix socket only (``listen_addresses=''``) in a private temporary
directory, so no TCP port is opened and two test runs never collide. PostgreSQL refuses to
run as root; under root (CI containers) the cluster runs as the ``postgres`` user that
Debian's package creates, through ``runuser``.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

_counter = itertools.count()


def find_bin_dir() -> Path | None:
    """Directory holding ``initdb`` and ``pg_ctl`` (PATH, then Debian's layout), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    bin_dir = Path(initdb).resolve().parent if initdb else None
    tools = ("pg_ctl", "createdb")
    return bin_dir if bin_dir and all((bin_dir / t).exists() for t in tools) else None


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here (for a skip), or None."""
    if find_bin_dir() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not installed: apt-get install postgresql"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


class PostgresCluster:
    """Start/stop a cluster; ``catalog(name)`` gives a fresh database's DuckLake catalog."""

    def __init__(self) -> None:
        bin_dir = find_bin_dir()
        assert bin_dir is not None
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="jobtrail-pg-"))
        self.port = 5432  # names the socket file only: nothing listens on TCP
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() == 0:
            os.chown(self.dir, pwd.getpwnam("postgres").pw_uid, -1)

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}\n{done.stderr}")

    def start(self) -> None:
        """Create the cluster and start its server."""
        data = self.dir / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", self.user, "--no-sync")
        self.start_server()

    def start_server(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses='' -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.dir / "data"), "-o", options, "-l", str(self.dir / "log"),
            "-w", "start",
        )  # fmt: skip

    def stop_server(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        """Stop the server and delete the cluster."""
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def conninfo(self, dbname: str) -> str:
        """libpq connection string of a database of this cluster."""
        return f"dbname={dbname} host={self.dir} port={self.port} user={self.user}"

    def create_database(self, prefix: str = "lake") -> str:
        """A new empty database; returns its name."""
        name = f"{prefix}_{os.getpid()}_{next(_counter)}"
        self._run("createdb", "-h", str(self.dir), "-p", str(self.port), "-U", self.user, name)
        return name

    def catalog(self, prefix: str = "lake") -> str:
        """The ``postgres:...`` DuckLake catalog of a new empty database."""
        return f"postgres:{self.conninfo(self.create_database(prefix))}"
