"""``python -m ganeval_test_entry``: the ganeval CLI with the test-only synthetic model registered."""

import sys

import synthetic  # noqa: F401  (registers the test-bank model)

from ganeval.cli import main

if __name__ == "__main__":
    sys.exit(main())
