"""``python -m ganeval``."""

import sys

from ganeval.cli import main

sys.exit(main())
