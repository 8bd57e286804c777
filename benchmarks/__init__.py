"""Benchmark suite of the broker: `make bench` (python -m benchmarks.run).

It drives the same local stack as the integration and e2e tiers (``local.stack``), and reads the
registry through the broker's own key helpers (``broker.store``), so the layer's sources are put
on the import path here."""

import sys

from local.paths import SHARED

if str(SHARED) not in sys.path:
    sys.path.append(str(SHARED))
