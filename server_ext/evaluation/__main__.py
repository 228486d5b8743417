"""``python -m server_ext.evaluation``: run the evaluation described by the spec URL."""

from __future__ import annotations

import sys

from .job import main

if __name__ == "__main__":
    sys.exit(main())
