"""Test-side helpers for the upstream simulator's tests: keys, clients, and the ``Sim`` handle."""

import sys
from pathlib import Path
from typing import Any

import httpx2

ROOT = Path(__file__).resolve().parents[2]
SIM_PATH = ROOT / "local" / "simulators"
if str(SIM_PATH) not in sys.path:  # pytest's pythonpath has it too; this keeps other runners working
    sys.path.insert(0, str(SIM_PATH))

from upstream_sim import Simulator  # noqa: E402

AVATURN_KEY = "test-avaturn-key"
OPENAI_KEY = "test-openai-key"
CARTESIA_KEY = "test-cartesia-key"
CARTESIA_VERSION = "2025-04-16"


def new_client(timeout: float = 5) -> httpx2.Client:
    """An httpx2 client; ``verify=False`` because every URL is plain http and building the
    default TLS context costs ~50 ms per client."""
    return httpx2.Client(timeout=timeout, verify=False)


class Sim:
    """Test-side handle: base URLs, authorized request helpers, and the control API."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        urls = simulator.urls
        self.avaturn_url = urls["avaturn"]
        self.openai_url = urls["openai"]
        self.cartesia_url = urls["cartesia"]
        self.control_url = urls["control"]
        self.control = httpx2.Client(base_url=self.control_url, timeout=5, verify=False)
        #: Shared keep-alive client for upstream calls (tests needing fresh connections make their own).
        self.http = new_client()

    # ---- control ---------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        response = self.control.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Any = None, expect: int = 200) -> Any:
        response = self.control.post(path, json=body)
        assert response.status_code == expect, response.text
        return response.json()

    def fault(self, endpoint: str, kind: str, **spec: Any) -> Any:
        return self.post("/faults", {"endpoint": endpoint, "kind": kind, **spec}, expect=201)

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        params = {} if endpoint is None else {"endpoint": endpoint}
        result: list[dict[str, Any]] = self.get("/requests", **params)["requests"]
        return result

    def sessions(self) -> dict[str, list[dict[str, Any]]]:
        result: dict[str, list[dict[str, Any]]] = self.get("/sessions")
        return result

    def advance(self, seconds: float) -> None:
        self.post("/clock/advance", {"seconds": seconds})

    # ---- upstream calls ---------------------------------------------------------------------

    def mint_openai(self, seconds: int = 600, **session: Any) -> httpx2.Response:
        body = {
            "expires_after": {"anchor": "created_at", "seconds": seconds},
            "session": {"type": "realtime", "model": "gpt-realtime", **session},
        }
        return self.http.post(
            f"{self.openai_url}/realtime/client_secrets",
            json=body,
            headers={"Authorization": f"Bearer {OPENAI_KEY}"},
            timeout=5,
        )

    def mint_cartesia(self, expires_in: int = 60, grants: dict[str, bool] | None = None) -> httpx2.Response:
        return self.http.post(
            f"{self.cartesia_url}/access-token",
            json={"grants": grants if grants is not None else {"agent": True}, "expires_in": expires_in},
            headers={"Authorization": f"Bearer {CARTESIA_KEY}", "Cartesia-Version": CARTESIA_VERSION},
            timeout=5,
        )

    def create(self, body: dict[str, Any], key: str = AVATURN_KEY, timeout: float = 5) -> httpx2.Response:
        return self.http.post(
            f"{self.avaturn_url}/api/v1/sessions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout,
        )

    def create_openai_session(self, **extra: Any) -> dict[str, Any]:
        secret = self.mint_openai().json()["value"]
        response = self.create({"conversation_engine": {"type": "openai-realtime", "client_secret": secret}, **extra})
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def delete(self, session_id: str, key: str = AVATURN_KEY) -> httpx2.Response:
        return self.http.delete(
            f"{self.avaturn_url}/api/v1/sessions/{session_id}", headers={"Authorization": f"Bearer {key}"}, timeout=5
        )

    def sdk(self, token: str | None, origin: str | None = None) -> httpx2.Response:
        headers = {}
        if token is not None:
            headers["X-Session-Token"] = token
        if origin is not None:
            headers["Origin"] = origin
        return self.http.get(f"{self.avaturn_url}/_sdk/v0/sessions", headers=headers, timeout=5)
