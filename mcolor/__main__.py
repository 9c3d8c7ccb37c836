"""``python -m mcolor`` is the same as the ``mcolor`` console script."""

import sys

from mcolor.cli import main

sys.exit(main())
