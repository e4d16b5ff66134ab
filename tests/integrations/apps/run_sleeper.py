"""Prints ``ready`` and sleeps until a signal ends it (default handlers)."""

from __future__ import annotations

import sys
import time

print("ready", flush=True)
print("sleeping", file=sys.stderr, flush=True)
time.sleep(60)
