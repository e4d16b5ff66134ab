"""One application log record outside any job (the logs page's live tail).

Usage: app_log.py MESSAGE. Prints ``{}``.
"""

from __future__ import annotations

import logging
import sys

import jobtrail

jobtrail.configure(log_export_delay_ms=50)
log = logging.getLogger("web.tail")
log.setLevel(logging.INFO)
log.warning(sys.argv[1])
jobtrail.shutdown()
print("{}")
