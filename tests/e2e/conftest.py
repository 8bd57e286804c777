"""E2E tier: registers its marker (the project runs pytest with --strict-markers)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: the demo page in headless Chromium against its own local stack")
