"""E2E tier: the demo page (web/) with the real Avaturn web SDK in headless Chromium, against a
local stack of its own (broker on sam local start-api, moto, simulators, vite preview).

The browser part is ``web/e2e/demo.test.mjs`` (``node --test``, playwright-core driving Debian's
``/usr/bin/chromium``); this module brings the stack up, gives that run a clean slate, and stops
everything it started; the same run covers the page's broker client (``web/test/``, no browser).
Screenshots land in ``artifacts/e2e/``."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.paths import ROOT, WEB
from local.processes import listening
from local.stack import Stack, running
from tests.support.stack import reset

pytestmark = pytest.mark.e2e

ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# One session per owner, so that a second Start shows the cap message (and a reload must free the
# slot at once), and the shortest lease, so that the page's renewals show within seconds.
OVERRIDES = {"MAX_ACTIVE_SESSIONS_PER_OWNER": "1", "SESSION_LEASE_SECONDS": "15"}
NODE_TIMEOUT = 300


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    missing = [
        hint
        for path, hint in (
            (CHROMIUM, f"{CHROMIUM} (Debian package chromium)"),
            (WEB / "node_modules" / "playwright-core", "web/node_modules (npm ci in web/)"),
        )
        if not path.exists()
    ]
    if missing or shutil.which("node") is None:
        pytest.fail(f"missing {', '.join(missing) or 'node'}: run `make setup`")
    # Ports of its own: the dev stack uses 3000/4010-4019/5173, the integration tier 3100/4110-4119.
    stack = Stack(name="e2e", api_port=3200, port_base=4210, web_port=5273, overrides=OVERRIDES)
    stack.down()  # a stale stack of an interrupted run
    taken = [port for port in (3200, 4210, 4211, 4212, 4213, 5273) if listening("127.0.0.1", port)]
    if taken:
        pytest.fail(f"ports {taken} on 127.0.0.1 are taken by another process; the e2e stack needs them")
    with running(stack):
        yield stack


def test_demo_page_in_chromium(stack: Stack) -> None:
    """Given the stack and the page, when the browser tests run, then they all pass."""
    reset(stack)  # an empty registry (so the cap counts only this run's sessions) and fresh simulators
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    env = os.environ | {
        "DEMO_URL": str(stack.web_url),
        "BROKER_URL": stack.api_url,
        "CONTROL_URL": stack.control_url,
        "ARTIFACTS_DIR": str(ARTIFACTS),
        "CHROMIUM": str(CHROMIUM),
    }
    result = subprocess.run(
        ["node", "--test", "--test-reporter=spec", "test/", "e2e/"],
        cwd=WEB,
        env=env,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    report = result.stdout + result.stderr
    (ARTIFACTS / "node-test.log").write_text(report)
    if result.returncode != 0:
        logs = ARTIFACTS / "stack-logs"
        logs.mkdir(exist_ok=True)
        for log in stack.state.glob("*.log"):
            shutil.copy(log, logs / log.name)
    print(report)
    assert result.returncode == 0, f"browser tests failed (artifacts in {ARTIFACTS}):\n{report[-6000:]}"
    shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
    assert "02-connecting-desktop.png" in shots, shots
    assert "05-cap-reached-desktop.png" in shots, shots
