"""``python -m upstream_sim``."""

import sys

from upstream_sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
