"""What every benchmark shares: the private stack (``local.stack``, the tests' driver, with the
patched moto server), the simulators' control API, moto's request recorder, the stack's
containers on the project's engine, API Gateway events, and the statistics."""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from broker.store import session_key
from local import engine
from local.paths import EVENTS, PYTHON, ROOT, TABLE
from local.stack import Stack

OUT = ROOT / "artifacts" / "bench"
WORK = OUT / "work"  # scratch files of one run (env files, probe events); emptied at its start
STACK = "bench"
BUILD = Stack(name=STACK).build_dir  # the stack's own `sam build` output
RIE = "/usr/local/bin/aws-lambda-rie"
# moto with per-item transaction backups (benchmarks/moto_server.py), in place of stock moto_server
PATCHED_MOTO = (str(PYTHON), "-m", "benchmarks.moto_server")
# route or trigger -> SAM logical id
FUNCTIONS = {
    "create": "CreateSessionFunction",
    "get": "GetSessionFunction",
    "terminate": "TerminateSessionFunction",
    "cleanup": "CleanupSessionsFunction",
}
# variables the image itself defines (the Lambda base image), not the function's configuration
IMAGE_ENV = {"PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "LANG", "TZ", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"}


def log(message: str) -> None:
    print(f"--> {message}", file=sys.stderr, flush=True)


# -- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (p99 of fewer than 100 samples is their maximum)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def stats(values: Sequence[float], digits: int = 1) -> dict[str, float]:
    """Summary of samples in milliseconds (or whatever unit they come in)."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), digits),
        "p99": round(percentile(values, 99), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


# -- API Gateway v2 events (the project's own samples, with real ids) ----------------------------


def _event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


def create_event() -> dict[str, Any]:
    event = _event("create_session.json")
    event["headers"].pop("idempotency-key", None)  # the plain create; a key adds two registry writes
    return event


def session_event(kind: str, session_id: str, token: str, source_ip: str) -> dict[str, Any]:
    event = _event("get_session.json" if kind == "get" else "terminate_session.json")
    path = f"/sessions/{session_id}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["pathParameters"] = {"session_id": session_id}
    event["headers"]["x-session-token"] = token
    event["headers"]["x-forwarded-for"] = source_ip
    event["requestContext"]["http"]["sourceIp"] = source_ip
    return event


def cleanup_event() -> dict[str, Any]:
    return _event("cleanup_schedule.json")


@dataclass
class Bench:
    """A benchmark run on ``stack``: its HTTP client, moto's recording, the functions' environments."""

    stack: Stack
    http: requests.Session = field(default_factory=requests.Session)
    recording: Path = OUT / "moto-recording.jsonl"
    _envs: dict[str, dict[str, str]] = field(default_factory=dict)

    def function_env(self, function: str) -> dict[str, str]:
        """The environment `sam local` gives the function (read from its warm container), minus
        what the image defines: the cold-start containers get exactly the same configuration."""
        if function in self._envs:
            return self._envs[function]
        for cid in engine.container_ids():
            values = engine.container_env(cid)
            if values is None:
                continue  # gone meanwhile (another stack's container)
            mine = values.get("AWS_ENDPOINT_URL") == self.stack.moto_url()  # others' stacks run here too
            if mine and values.get("AWS_LAMBDA_FUNCTION_NAME") == function:
                self._envs[function] = {k: v for k, v in values.items() if k not in IMAGE_ENV}
                return self._envs[function]
        raise RuntimeError(f"no sam local container of {function} is running")

    # the simulators' control API
    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"{self.stack.control_url}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json() if response.content else None

    def connections(self) -> dict[str, int]:
        return {name: c["accepted"] for name, c in self.control("GET", "/connections").items()}

    def requests_since(self, seq: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.control("GET", f"/requests?since={seq}")["requests"]
        return found

    def last_seq(self) -> int:
        found = self.control("GET", "/requests")["requests"]
        return max((r["seq"] for r in found), default=0)

    # moto's own request recorder (every AWS call the functions make, with its X-Amz-Target)
    def moto(self, action: str) -> None:
        self.http.post(f"{self.stack.moto_url()}/moto-api/recorder/{action}", timeout=10).raise_for_status()

    def aws_calls(self, start_line: int = 0) -> Counter[str]:
        """Operations recorded since line ``start_line`` of the recording."""
        calls: Counter[str] = Counter()
        if not self.recording.exists():
            return calls
        with self.recording.open() as handle:
            for number, line in enumerate(handle):
                if number < start_line or not line.strip():
                    continue
                headers = {k.lower(): v for k, v in json.loads(line)["headers"].items()}
                calls[headers.get("x-amz-target", "other")] += 1
        return calls

    def recording_lines(self) -> int:
        if not self.recording.exists():
            return 0
        with self.recording.open() as handle:
            return sum(1 for _ in handle)

    # the broker through sam local start-api
    def create(self) -> requests.Response:
        return self.http.post(
            f"{self.stack.api_url}/sessions",
            data=json.dumps({"engine": "openai-realtime"}),
            headers={"content-type": "application/json"},
            timeout=60,
        )

    def new_session(self) -> tuple[str, str, str]:
        """A live session: (session id, token, the source IP that owns it)."""
        response = self.create()
        response.raise_for_status()
        body = response.json()
        row = self.stack.aws_client("dynamodb").get_item(TableName=TABLE, Key=session_key(body["session_id"]))["Item"]
        owner = row["owner"]["S"]
        return body["session_id"], body["token"], owner.removeprefix("ip:")

    def log_offset(self, name: str) -> int:
        path = self.stack.state / f"{name}.log"
        return path.stat().st_size if path.exists() else 0

    def handler_durations(self, name: str, offset: int, expected: int, wait: float = 5.0) -> list[float]:
        """Handler durations (the emulator's REPORT lines) that `sam local` logged since ``offset``."""
        path = self.stack.state / f"{name}.log"
        deadline = time.monotonic() + wait
        while True:
            with path.open("rb") as handle:
                handle.seek(offset)
                text = handle.read().decode(errors="replace")
            found = [float(x) for x in _REPORT.findall(text)]
            if len(found) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def containers(self) -> list[tuple[str, str, str]]:
        """(container id, IP address, function) of this stack's `sam local` containers."""
        found = []
        for cid in engine.container_ids():
            raw = engine.docker(
                "inspect", "--format", "{{.NetworkSettings.IPAddress}} {{json .Config.Env}}", cid, check=False
            )
            if not raw.strip():
                continue
            ip, env = raw.split(" ", 1)
            values = dict(item.split("=", 1) for item in json.loads(env))
            if values.get("AWS_ENDPOINT_URL") == self.stack.moto_url():
                found.append((cid, ip, values.get("AWS_LAMBDA_FUNCTION_NAME", "?")))
        return found

    def container_ips(self) -> dict[str, str]:
        return {ip: function for _, ip, function in self.containers()}

    def cpu_seconds(self, pids: list[int]) -> float:
        """User + system CPU time of these host processes so far."""
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
        return total / os.sysconf("SC_CLK_TCK")

    def container_pids(self, cid: str) -> list[int]:
        out = engine.docker("top", cid, "-eo", "pid", check=False)
        return [int(x) for x in out.split()[1:] if x.isdigit()]


_REPORT = re.compile(r"REPORT RequestId: \S+\s+(?:Init Duration: [\d.]+ ms\s+)?Duration: ([\d.]+) ms")


def ms(seconds: float) -> float:
    return seconds * 1000
