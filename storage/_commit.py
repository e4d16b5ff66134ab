"""What one group commit stored, and how long commits take: the writer's reports.

Subscribers (live streams, the lake's poller) receive a :class:`CommitInfo` per commit;
``/metrics`` reads the :class:`CommitHistogram`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class CommitInfo:
    """What one group commit stored, for subscribers (live streams, metrics)."""

    spans: int = 0
    logs: int = 0
    metrics: int = 0
    job_ids: set[str] = field(default_factory=set)
    first_log_id: int | None = None
    last_log_id: int | None = None
    commit_s: float = 0.0


@dataclass(slots=True)
class CommitHistogram:
    """Commit durations in Prometheus histogram buckets (seconds)."""

    bounds: tuple[float, ...] = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
    counts: list[int] = field(default_factory=lambda: [0] * 11)
    total_s: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        """Count one commit."""
        i = next((k for k, b in enumerate(self.bounds) if seconds <= b), len(self.bounds))
        self.counts[i] += 1
        self.total_s += seconds
        self.count += 1
