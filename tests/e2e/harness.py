"""A real ``jobtrail serve`` process on ephemeral ports with a DuckDB file in a temp dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

APPS = Path(__file__).parent / "apps"


class ServerProcess:
    """Starts, stops and restarts the server; small HTTP helpers for the API."""

    def __init__(self, tmp: Path, config_text: str = "{}\n") -> None:
        self.tmp = tmp
        self.db = tmp / "jobtrail.duckdb"
        self.config = tmp / "config.yaml"
        self.config.write_text(config_text)
        self.proc: subprocess.Popen[str] | None = None
        self.grpc = ""
        self.http = ""
        self.api = ""

    def start(self) -> None:
        ready = self.tmp / "ready.json"
        ready.unlink(missing_ok=True)
        self.log = open(self.tmp / "server.log", "a")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "jobtrail", "serve", "--config", str(self.config),
                "--db", str(self.db), "--grpc-port", "0", "--http-port", "0", "--api-port", "0",
                "--ready-file", str(ready),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {(self.tmp / 'server.log').read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError("server did not become ready in 30 s")
            time.sleep(0.05)
        endpoints = json.loads(ready.read_text())
        self.grpc, self.http, self.api = endpoints["grpc"], endpoints["http"], endpoints["api"]

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        finally:
            self.log.close()
        self.proc = None
        return code

    def restart(self) -> None:
        assert self.stop() == 0
        self.start()

    def get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.api}{path}" + (f"?{query}" if query else "")
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback test server
            return json.loads(resp.read())

    def get_status(self, path: str) -> tuple[int, Any]:
        try:
            return 200, self.get(path)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def run_app(
        self, name: str, *args: str, timeout_s: float = 60, env: dict[str, str] | None = None
    ) -> str:
        """Run an app from tests/e2e/apps in its own process, exporting to this server.

        ``env`` adds to the standard OTEL_* environment pointing at the gRPC receiver (set
        ``OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`` to use the HTTP receiver instead).
        """
        done = subprocess.run(
            [sys.executable, str(APPS / f"{name}.py"), *args],
            env=self.app_env(name, env), capture_output=True, text=True, timeout=timeout_s,
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def app_env(self, name: str, env: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of an app exporting to this server (OTEL_* plus ``env``)."""
        extra = dict(env or {})
        http = extra.get("OTEL_EXPORTER_OTLP_PROTOCOL") == "http/protobuf"
        return {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.http if http else f"http://{self.grpc}",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_SERVICE_NAME": f"e2e-{name}",
            **extra,
        }

    def start_app(self, name: str, *args: str) -> subprocess.Popen[str]:
        """Start an app in the background (stdout piped); the caller waits or kills it."""
        return subprocess.Popen(
            [sys.executable, str(APPS / f"{name}.py"), *args],
            env=self.app_env(name), stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def wait_for(self, path: str, predicate: Any, timeout_s: float = 15, **params: Any) -> Any:
        """Poll the API (bounded) until ``predicate(body)`` holds; return the body."""
        deadline = time.monotonic() + timeout_s
        body: Any = None
        while True:
            try:
                body = self.get(path, **params)
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise
                body = None  # not there yet
            if body is not None and predicate(body):
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting on {path}: {json.dumps(body)[:2000]}")
            time.sleep(0.1)
