"""How long the writer waits for more batches before it commits a group.

Every commit pays a fixed price whatever it holds: a dozen statements (log counts, log
ranges, jobs and steps read and rewritten, Arrow scans registered) and the commit itself,
~20 ms on this machine against ~10 µs per record. Committing what is queued the moment the
writer is free splits concurrent clients into halves that take turns: with 8 Export calls in
flight, groups of 4 requests (~2k records) while the other 4 are being decoded, and the
fixed price is paid twice as often as needed.

So the writer remembers how many writes were outstanding when its last commit ended (the
group plus what queued behind it) and, while a new group is smaller than that, waits for
the rest a little: at most half the last commit's duration and never more than
:data:`MAX_LINGER_S`. A lone client (one write at a time) is never delayed; a group that is
already large (:data:`LINGER_RECORDS`) is committed at once, so a saturated writer never
idles. The lake writer gathers for a fixed interval instead (its commits cost far more).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Upper bound on the wait for more writes, in seconds.
MAX_LINGER_S = 0.05
#: A group with this many records is committed without waiting: the fixed price is already
#: a small share of it.
LINGER_RECORDS = 10_000


@dataclass(slots=True)
class GroupLinger:
    """Decides, while a group forms, how long to wait for the next batch.

    Args:
        fixed_s: Gather for this long from the group's first batch, always (0: adaptive).
    """

    fixed_s: float = 0.0
    #: Writes outstanding when the last commit ended (its group and what queued behind it).
    writers: int = 1
    #: Duration of the last commit, in seconds.
    last_commit_s: float = 0.0

    def committed(self, group_items: int, queued_items: int, commit_s: float) -> None:
        """Note a finished commit and the writes that waited behind it."""
        self.writers = group_items + queued_items
        self.last_commit_s = commit_s

    def wait_s(self, items: int, records: int) -> float:
        """Seconds after the group's first batch until which to wait for another (0: none)."""
        if self.fixed_s:
            return self.fixed_s
        if items >= self.writers or records >= LINGER_RECORDS:
            return 0.0
        return min(MAX_LINGER_S, self.last_commit_s / 2)
