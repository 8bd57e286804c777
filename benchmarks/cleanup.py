"""Cleanup throughput: N expired sessions, each a real live session in the Avaturn simulator and
an active row in the registry, swept by one warm invocation of the scheduled function (through
`sam local start-lambda`) while every Avaturn DELETE takes the stated extra latency.

Seeding writes the rows the create path leaves behind (``reserve`` + ``activate``: status
``active``, the Avaturn id, the token's digest, ``due_at`` = ``expires_at``), already past due, with
batch writes, spread over owners of 100 sessions each (their counter items included)."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from benchmarks.cold import env_file, invoke, rie_container
from benchmarks.common import WORK, Bench, cleanup_event, log, ms, stats
from broker.store import owner_key, session_key
from local.paths import EVENTS, TABLE

EVENT = EVENTS / "cleanup_schedule.json"
PER_OWNER = 100


def _upstream_sessions(bench: Bench, count: int) -> list[dict[str, str]]:
    """Live sessions created through the simulator's own Avaturn API (not through the broker)."""
    url = f"http://127.0.0.1:{bench.stack.port_base}/api/v1/sessions"
    headers = {"Authorization": f"Bearer {bench.stack.sim_keys['avaturn_api_key']}"}
    body = {
        "conversation_engine": {
            "type": "external",
            "url": "wss://engine.invalid/ws",
            "audio": {"user": {"sample_rate": 24000}},
        },
        "max_duration": 86400,
        "user_absent_timeout": 86400,
    }

    def create(chunk: int) -> list[dict[str, str]]:
        with requests.Session() as http:
            out = []
            for _ in range(chunk):
                response = http.post(url, json=body, headers=headers, timeout=10)
                response.raise_for_status()
                out.append(response.json())
            return out

    workers = 8
    chunks = [count // workers + (1 if i < count % workers else 0) for i in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        return [session for part in pool.map(create, chunks) for session in part]


def _batch(bench: Bench, requests_: list[dict[str, Any]]) -> None:
    db = bench.stack.aws_client("dynamodb")
    for start in range(0, len(requests_), 25):
        pending: dict[str, Any] = {TABLE: requests_[start : start + 25]}
        while pending:
            pending = db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def seed(bench: Bench, count: int) -> list[dict[str, Any]]:
    """Write ``count`` expired sessions; returns their keys."""
    upstream = _upstream_sessions(bench, count)
    db = bench.stack.aws_client("dynamodb")
    now = int(time.time())
    owners: dict[str, int] = {}
    items = []
    for number, session in enumerate(upstream):
        owner = f"ip:203.0.113.{number // PER_OWNER + 1}"
        owners[owner] = owners.get(owner, 0) + 1
        session_id = str(uuid.uuid4())
        expired = now - 60
        items.append(
            {
                **session_key(session_id),
                "session_id": {"S": session_id},
                "owner": {"S": owner},
                "engine": {"S": "external"},
                "status": {"S": "active"},
                "created_at": {"N": str(expired - 900)},
                "expires_at": {"N": str(expired)},
                "due_at": {"N": str(expired)},
                "avaturn_session_id": {"S": session["session_id"]},
                "token_sha256": {"S": hashlib.sha256(session["token"].encode()).hexdigest()},
            }
        )
    _batch(bench, [{"PutRequest": {"Item": item}} for item in items])
    for owner, active in owners.items():
        db.put_item(TableName=TABLE, Item={**owner_key(owner), "active": {"N": str(active)}})
    return [{"pk": item["pk"]} for item in items]


def _process_groups(bench: Bench, container: str | None) -> dict[str, list[int]]:
    """Host PIDs of what works during a sweep: the function's container, moto, the simulators."""
    if container:
        function = bench.container_pids(container)
    else:  # `sam local start-lambda`'s container(s) of the function
        function = [
            pid
            for cid, _, name in bench.containers()
            if name == "CleanupSessionsFunction"
            for pid in bench.container_pids(cid)
        ]
    pid = bench.stack.pid  # the stack's own PID files
    return {
        "function": function,
        "moto": [p for p in [pid("moto")] if p],
        "simulators": [p for p in [pid("simulators")] if p],
    }


def sweep(
    bench: Bench, sessions: int, latency: float, invoke: Callable[[], Any], container: str | None = None
) -> dict[str, Any]:
    """Seed, add the latency, run one sweep, check that every session ended upstream, then
    delete the swept rows: moto's index queries scan the whole table (DynamoDB's do not), so
    leftovers of earlier runs would make each run slower than the one before."""
    keys = seed(bench, sessions)
    seq = bench.last_seq()
    live_before = len(bench.control("GET", "/sessions")["active"])
    bench.control("POST", "/latency", {"endpoint": "avaturn.delete", "seconds": latency})
    pids = _process_groups(bench, container)
    cpu0 = {name: bench.cpu_seconds(group) for name, group in pids.items()}
    try:
        started = time.perf_counter()
        summary = invoke()
        wall = time.perf_counter() - started
    finally:
        bench.control("POST", "/latency", {"endpoint": "avaturn.delete", "seconds": 0})
    cpu = {name: round(bench.cpu_seconds(group) - cpu0[name], 2) for name, group in pids.items()}
    deletes = [r for r in bench.requests_since(seq) if r["endpoint"] == "avaturn.delete"]
    run = {
        "wall_s": round(wall, 2),
        "summary": summary,
        "avaturn_deletes": len(deletes),
        "delete_statuses": sorted({r["status"] for r in deletes}),
        "upstream_live_before": live_before,
        "upstream_live_after": len(bench.control("GET", "/sessions")["active"]),
        "cpu_s": cpu,
    }
    run["complete"] = summary.get("terminated") == sessions and run["upstream_live_after"] == 0
    _batch(bench, [{"DeleteRequest": {"Key": key}} for key in keys])
    log(f"cleanup: {json.dumps(run)}")
    return run


def cleanup_runs(bench: Bench, sessions: int, runs: int, latency: float) -> dict[str, Any]:
    """``runs`` sweeps in one warm `sam local start-lambda` container, then one with no added
    latency (the floor that is not Avaturn's)."""
    bench.stack.invoke_warm("CleanupSessionsFunction", EVENT)  # a warm container, nothing due
    bench.moto("reset-recording")
    bench.moto("start-recording")
    seq0 = bench.last_seq()
    out: list[dict[str, Any]] = []
    for run in range(runs):
        log(f"cleanup: {sessions} expired sessions, +{ms(latency):.0f} ms per DELETE (run {run + 1}/{runs})")
        offset = bench.log_offset("sam-lambda")
        out.append(sweep(bench, sessions, latency, lambda: bench.stack.invoke_warm("CleanupSessionsFunction", EVENT)))
        handler = bench.handler_durations("sam-lambda", offset, 1)
        out[-1]["handler_s"] = round(handler[0] / 1000, 2) if handler else None
    log(f"cleanup: {sessions} expired sessions, no added latency")
    floor = sweep(bench, sessions, 0.0, lambda: bench.stack.invoke_warm("CleanupSessionsFunction", EVENT))
    bench.moto("stop-recording")
    calls = bench.aws_calls()
    ips = bench.container_ips()
    ports: dict[str, set[str]] = {}
    for request in bench.requests_since(seq0):
        ip, port = request["client"].rsplit(":", 1)
        if request["endpoint"] == "avaturn.delete":
            ports.setdefault(ips.get(ip, ip), set()).add(port)
    return {
        "sessions": sessions,
        "latency_ms": ms(latency),
        "runs": out,
        "wall_s": stats([r["wall_s"] for r in out], 2),
        "no_latency": floor,
        "get_secret_value": calls["secretsmanager.GetSecretValue"],
        "aws_calls": dict(calls),
        "avaturn_connections_by_container": {k: len(v) for k, v in ports.items()},
    }


def cpu_share_runs(bench: Bench, sessions: int, latency: float, memory_sizes: list[int]) -> dict[str, Any]:
    """The same sweep in a fresh emulator container given a Lambda memory size and its CPU share
    (Lambda gives 1 vCPU at 1,769 MB, proportionally less below); `sam local` sets no CPU limit."""
    work = Path(tempfile.mkdtemp(prefix="cleanup-", dir=WORK))
    env = env_file(bench, "CleanupSessionsFunction", work)
    out: dict[str, Any] = {}
    for memory in memory_sizes:
        cpus = round(memory / 1769, 2)
        label = f"{memory} MB"
        log(f"cleanup: {sessions} expired sessions, +{ms(latency):.0f} ms, {label}: CPU limited to {cpus}")
        with rie_container(bench, "CleanupSessionsFunction", env, cpus=cpus, memory_mb=memory) as (name, port):
            invoke(port, cleanup_event(), retry_for=15, timeout=150)  # init; nothing due

            def run(port: int = port) -> Any:
                return invoke(port, cleanup_event(), timeout=150)[1]

            result = sweep(bench, sessions, latency, run, container=name)
            result["function_cpu_of_limit"] = round(result["cpu_s"]["function"] / result["wall_s"] / cpus, 2)
            out[label] = {"cpus": cpus, **result}
    return out
