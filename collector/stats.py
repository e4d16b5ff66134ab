"""The collector's own counters, read by ``GET /metrics``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class ReceiverStats:
    """Counts per signal (``traces``, ``logs``, ``metrics``) kept by the receivers."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)
    stored: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    refused_requests: Counter[str] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)
