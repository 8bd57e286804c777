"""The command line: ``python -m upstream_sim`` as a real process."""

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.simulator.support import SIM_PATH, new_client

ALL_FREE = ["--avaturn-port", "0", "--openai-port", "0", "--cartesia-port", "0", "--control-port", "0"]


def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "upstream_sim", *args],
        cwd=SIM_PATH,
        env={**os.environ, "PYTHONPATH": str(SIM_PATH), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(proc: subprocess.Popen[str], timeout: float = 10) -> str:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not selector.select(timeout):
            raise AssertionError("no output from the simulator")
        return proc.stdout.readline()
    finally:
        selector.close()


def parse_ready(line: str) -> dict[str, list[str]]:
    assert line.startswith("upstream_sim ready "), line
    urls: dict[str, list[str]] = {}
    for part in line.split()[2:]:
        name, _, value = part.partition("=")
        if name != "pid":
            urls[name] = value.split(",")
    return urls


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, list[str]], Path]]:
    ready_file = tmp_path / "ready.json"
    proc = spawn(
        *ALL_FREE,
        "--also-host",
        "127.0.0.2",
        "--gone-avatars",
        "old,older",
        "--ready-file",
        str(ready_file),
        env={"UPSTREAM_SIM_OPENAI_KEY": "env-openai-key"},
    )
    try:
        yield proc, parse_ready(read_line(proc)), ready_file
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)


def test_serves_each_upstream_on_both_hosts_and_stops_on_sigterm(
    running: tuple[subprocess.Popen[str], dict[str, list[str]], Path],
) -> None:
    proc, urls, ready_file = running
    # The ready line lists every listener; upstreams on both hosts, control on the primary only
    assert set(urls) == {"avaturn", "openai", "cartesia", "control"}
    assert [u.split("//")[1].split(":")[0] for u in urls["openai"]] == ["127.0.0.1", "127.0.0.2"]
    assert len(urls["control"]) == 1
    assert urls["control"][0].startswith("http://127.0.0.1:")
    assert json.loads(ready_file.read_text())["all_urls"] == urls
    with new_client() as client:
        # Keys come from the environment when not given as options
        for base in urls["openai"]:
            response = client.post(
                f"{base}/realtime/client_secrets",
                json={"session": {"type": "realtime", "model": "gpt-realtime"}},
                headers={"Authorization": "Bearer env-openai-key"},
            )
            assert response.status_code == 200
        # The control port is not on the second host
        control_port = urls["control"][0].split(":")[2].split("/")[0]
        with pytest.raises(httpx2.ConnectError):
            client.get(f"http://127.0.0.2:{control_port}/_control/health")
        control = urls["control"][0]
        # --gone-avatars
        secret = client.post(f"{control}/secrets/openai").json()["value"]
        response = client.post(
            f"{urls['avaturn'][1]}/api/v1/sessions",
            json={"avatar_id": "older", "conversation_engine": {"type": "openai-realtime", "client_secret": secret}},
            headers={"Authorization": "Bearer sim-avaturn-key"},
        )
        assert response.status_code == 410
        # A request hanging in a long delay does not hold up shutdown
        client.post(f"{control}/faults", json={"endpoint": "avaturn.delete", "kind": "delay", "seconds": 60})
    hanging = threading.Thread(target=_ignore_errors, args=(urls["avaturn"][0],), daemon=True)
    hanging.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if httpx2.get(f"{control}/requests", params={"endpoint": "avaturn.delete"}).json()["requests"]:
            break
        time.sleep(0.02)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert time.monotonic() - started < 5
    assert proc.stdout is not None
    assert "upstream_sim stopped" in proc.stdout.read()


def _ignore_errors(avaturn_url: str) -> None:
    try:
        with new_client(timeout=30) as client:
            client.delete(f"{avaturn_url}/api/v1/sessions/x", headers={"Authorization": "Bearer sim-avaturn-key"})
    except httpx2.TransportError:
        pass


def test_refuses_the_wildcard_address() -> None:
    proc = spawn("--host", "0.0.0.0", *ALL_FREE)
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 2
    assert "wildcard" in stderr


def test_a_port_in_use_is_reported() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = spawn(*ALL_FREE, "--openai-port", str(port))
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 2
    assert "cannot bind" in stderr
