"""A quick TCP reachability probe of the collector endpoint, off the caller's thread.

If nobody listens at the endpoint, records would vanish silently (the exporter only logs);
the probe lets the agent fall back to also printing them on stderr.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

__all__ = ["PROBE_TIMEOUT_S", "start_probe"]

#: Upper bound for the TCP connect and for how long ``configure()`` waits for the answer.
PROBE_TIMEOUT_S = 0.3


def _reachable(host: str, port: int, timeout_s: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def start_probe(
    host: str, port: int, on_result: Callable[[bool], None], timeout_s: float = PROBE_TIMEOUT_S
) -> threading.Thread:
    """Probe ``host:port`` on a daemon thread and call ``on_result(reachable)`` from it.

    Returns the started thread so the caller may wait briefly (``join(timeout_s)``) for an
    early answer; name resolution may take longer than the connect, hence the thread.
    """

    def run() -> None:
        try:
            on_result(_reachable(host, port, timeout_s))
        except Exception:  # the callback guards itself; never let a probe thread die loudly
            return

    thread = threading.Thread(target=run, name="jobtrail-probe", daemon=True)
    thread.start()
    return thread
