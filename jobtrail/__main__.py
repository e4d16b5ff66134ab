"""``python -m jobtrail``."""

import sys

from jobtrail.cli import main

sys.exit(main())
