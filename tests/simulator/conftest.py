"""Fixtures for the upstream simulator's own tests.

One simulator runs in a background thread for the whole session on free 127.0.0.1 ports;
its state is reset before every test. Tests talk to it over real HTTP only.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.simulator.support import AVATURN_KEY, CARTESIA_KEY, OPENAI_KEY, Sim
from upstream_sim import SimConfig, Simulator


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """These tests need loopback sockets even when the suite runs with ``--disable-socket``."""
    if not config.pluginmanager.hasplugin("socket"):
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.enable_socket)


@pytest.fixture(scope="session")
def simulator() -> Iterator[Simulator]:
    config = SimConfig(avaturn_key=AVATURN_KEY, openai_key=OPENAI_KEY, cartesia_key=CARTESIA_KEY)
    sim = Simulator(config, ports={"avaturn": 0, "openai": 0, "cartesia": 0, "control": 0})
    sim.start_in_thread()
    yield sim
    sim.stop_thread()


@pytest.fixture
def sim(simulator: Simulator) -> Iterator[Sim]:
    handle = Sim(simulator)
    handle.post("/reset")
    yield handle
    handle.control.close()
    handle.http.close()
