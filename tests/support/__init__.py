"""Helpers of the tiers that run a local stack (integration, e2e): the stack as a test sees it
(``stack``) and the end-of-run leak check (``leaks``). Fixtures live in each tier's ``conftest.py``;
tests import helpers from here, never from a ``conftest.py``."""
