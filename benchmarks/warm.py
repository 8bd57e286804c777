"""Warm latency per route through `sam local start-api` (one warm container per function), and
over the same run: TCP connections the simulators accepted per upstream and per container, and
the AWS calls each route made (moto's request recorder), GetSecretValue among them."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

from benchmarks.common import Bench, log, ms, stats
from local.paths import EVENTS

ROUTES = ("create", "get", "terminate")
GET_SECRET = "secretsmanager.GetSecretValue"


def _call(bench: Bench, route: str, session: tuple[str, str] | None) -> tuple[float, Any]:
    api = bench.stack.api_url
    started = time.perf_counter()
    if route == "create":
        response = bench.create()
        expected = 201
    else:
        assert session is not None
        sid, token = session
        method = bench.http.get if route == "get" else bench.http.delete
        response = method(f"{api}/sessions/{sid}", headers={"x-session-token": token}, timeout=60)
        expected = 200 if route == "get" else 204
    elapsed = time.perf_counter() - started
    if response.status_code != expected:
        raise RuntimeError(f"{route}: HTTP {response.status_code}: {response.text[:300]}")
    return elapsed, response.json() if route == "create" else None


def warm_routes(bench: Bench, per_route: int, block: int) -> dict[str, Any]:
    """A first (untimed) create/get/delete wakes each route's container; then blocks of ``block``
    creates, ``block`` gets of those sessions and ``block`` deletes, until ``per_route`` each."""
    bench.control("POST", "/reset")
    bench.moto("reset-recording")
    bench.moto("start-recording")
    seq0 = bench.last_seq()
    latency: dict[str, list[float]] = defaultdict(list)
    handler: dict[str, list[float]] = defaultdict(list)
    calls: dict[str, Counter[str]] = defaultdict(Counter)
    invocations: Counter[str] = Counter()

    def run(route: str, sessions: list[tuple[str, str]], timed: bool) -> list[tuple[str, str]]:
        line0, offset = bench.recording_lines(), bench.log_offset("sam-api")
        created = []
        for session in sessions if route != "create" else [None] * len(sessions):
            elapsed, body = _call(bench, route, session)
            if timed:
                latency[route].append(ms(elapsed))
            if body:
                created.append((body["session_id"], body["token"]))
        invocations[route] += len(sessions)
        calls[route] += bench.aws_calls(line0)
        if timed:
            handler[route] += bench.handler_durations("sam-api", offset, len(sessions))
        return created

    log("warm: first invocation of each route (untimed)")
    first = run("create", [("", "")], timed=False)
    run("get", first, timed=False)
    run("terminate", first, timed=False)
    started = time.monotonic()
    for done in range(0, per_route, block):
        log(f"warm: invocations {done + 1}-{done + block} of each route")
        sessions = run("create", [("", "")] * block, timed=True)
        run("get", sessions, timed=True)
        run("terminate", sessions, timed=True)
    elapsed = time.monotonic() - started
    bench.moto("stop-recording")

    ips = bench.container_ips()
    per_container: dict[str, dict[str, int]] = defaultdict(dict)
    ports: dict[tuple[str, str], set[str]] = defaultdict(set)
    for request in bench.requests_since(seq0):
        ip, port = request["client"].rsplit(":", 1)
        ports[(request["upstream"], ips.get(ip, ip))].add(port)
    for (upstream, function), used in sorted(ports.items()):
        per_container[function][upstream] = len(used)
    return {
        "invocations": dict(invocations),
        "seconds": round(elapsed, 1),
        "client_ms": {route: stats(latency[route]) for route in ROUTES},
        "handler_ms": {route: stats(handler[route]) for route in ROUTES},
        "client_samples_ms": {route: [round(x, 2) for x in latency[route]] for route in ROUTES},
        # requests that waited ~1 s for a TCP SYN retransmission on loopback (see README)
        "client_over_900ms": {route: sum(x > 900 for x in latency[route]) for route in ROUTES},
        "connections_accepted": bench.connections(),
        "connections_by_container": dict(per_container),
        "aws_calls": {route: dict(calls[route]) for route in ROUTES},
        "get_secret_value": {route: calls[route][GET_SECRET] for route in ROUTES},
    }


def warm_cleanup(bench: Bench, invocations: int) -> dict[str, Any]:
    """The scheduled function, warm, with nothing due (the cost of a run that finds no work)."""
    event = EVENTS / "cleanup_schedule.json"
    bench.stack.invoke_warm("CleanupSessionsFunction", event)
    offset = bench.log_offset("sam-lambda")
    samples = []
    for _ in range(invocations):
        started = time.perf_counter()
        bench.stack.invoke_warm("CleanupSessionsFunction", event)
        samples.append(ms(time.perf_counter() - started))
    handler = bench.handler_durations("sam-lambda", offset, invocations)
    return {
        "client_ms": stats(samples),
        "handler_ms": stats(handler),
        "client_over_900ms": sum(x > 900 for x in samples),
    }
