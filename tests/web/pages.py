"""Constants shared by the page tests and their fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from e2e.harness import ServerProcess

CHROMIUM = Path(os.environ.get("JOBTRAIL_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
APPS = Path(__file__).parent / "apps"
#: Where the tests leave screenshots of every page (desktop and narrow).
SHOTS = Path(os.environ.get("JOBTRAIL_SCREENSHOTS", "/tmp/jobtrail-shots"))
DESKTOP = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}


def app_env(server: ServerProcess, name: str) -> dict[str, str]:
    """The environment ``ServerProcess.run_app`` gives an app, for apps run in the background."""
    return {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{server.grpc}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_SERVICE_NAME": f"web-{name}",
    }


def run_web_app(server: ServerProcess, name: str, *args: str) -> Any:
    """Run tests/web/apps/<name>.py to completion; return its JSON output."""
    done = subprocess.run(
        [sys.executable, str(APPS / f"{name}.py"), *args],
        env=app_env(server, name), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


def start_web_app(server: ServerProcess, name: str, *args: str) -> subprocess.Popen[str]:
    """Start tests/web/apps/<name>.py in the background (the caller waits and stops it)."""
    return subprocess.Popen(
        [sys.executable, str(APPS / f"{name}.py"), *args],
        env=app_env(server, name), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_until(predicate: Any, timeout_s: float = 10, what: str = "condition") -> None:
    """Poll a Python predicate (bounded)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
