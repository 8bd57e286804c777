"""Cold starts through the real runtime interface, and where init time goes.

Each run is a fresh container of the Lambda image: the Runtime Interface Emulator starting
``awslambdaric`` on the built function (``/var/task``) and layer (``/opt``), both read-only as in
Lambda, with the environment and the 512 MB memory limit `sam local` gives the function. The
emulator logs the real init time (``INIT REPORT(durationMs: ...)``: runtime start until the
runtime asks for its first event) and each invocation's duration (``INVOKE RTDONE``). (Its
``REPORT ... Init Duration`` field is not real locally: it reads ~0.1 ms.)
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from benchmarks.common import (
    BUILD,
    FUNCTIONS,
    OUT,
    RIE,
    WORK,
    Bench,
    cleanup_event,
    create_event,
    log,
    ms,
    session_event,
    stats,
)
from local import engine
from local.paths import BASE_IMAGE

INVOKE_PATH = "/2015-03-31/functions/function/invocations"
_INIT = re.compile(r"INIT REPORT\(durationMs: ([\d.]+)\)")
_RTDONE = re.compile(r"INVOKE RTDONE\(status: (\w+)[^)]*duration: ([\d.]+)ms\)")
_numbers = itertools.count()
BASELINE_APP = "def lambda_handler(event, context):\n    return {}\n"  # the runtime's own cold start


def env_file(bench: Bench, function: str, directory: Path) -> Path:
    path = directory / f"{function}.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in bench.function_env(function).items()))
    return path


def invoke(port: int, event: dict[str, Any], *, retry_for: float = 0.0, timeout: float = 60) -> tuple[float, Any]:
    """POST one event to the emulator; connection refusals before it listens are retried."""
    deadline = time.monotonic() + retry_for
    body = json.dumps(event)
    while True:
        started = time.perf_counter()
        try:
            response = requests.post(f"http://127.0.0.1:{port}{INVOKE_PATH}", data=body, timeout=timeout)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        return time.perf_counter() - started, response.json()


@contextmanager
def rie_container(
    bench: Bench,
    function: str,
    env: Path,
    code: Path | None = None,
    cpus: float | None = None,
    memory_mb: int | None = None,
    layer: Path | None = None,
    handler: str = "app.lambda_handler",
) -> Iterator[tuple[str, int]]:
    """A fresh container of the Lambda image running the function under the emulator, as
    `sam local` runs it (its memory size as the limit); yields its name and the 127.0.0.1 port of
    its invoke API. ``cpus`` limits its CPU as Lambda does for a memory size; ``code``, ``layer``
    and ``handler`` replace the built function's."""
    name = f"avl-bench-{os.getpid()}-{function.lower()}-{next(_numbers)}"
    memory = memory_mb or int(bench.function_env(function)["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
    engine.docker(
        "run", "-d", "--name", name, "-m", f"{memory}m", *(["--cpus", str(cpus)] if cpus else []),
        "-p", "127.0.0.1::8080", "--env-file", str(env),
        "-e", f"_HANDLER={handler}", "-e", f"AWS_LAMBDA_FUNCTION_HANDLER={handler}",
        "-v", f"{code or BUILD / function}:/var/task:ro", "-v", f"{layer or BUILD / 'BrokerLayer'}:/opt:ro",
        "--entrypoint", RIE, BASE_IMAGE, "--log-level", "info", "/var/runtime/bootstrap",
    )  # fmt: skip
    try:
        yield name, int(engine.docker("port", name, "8080/tcp").split(":")[-1])
    finally:
        engine.docker("rm", "-f", name, check=False)


def prewarm(*directories: Path) -> None:
    """Read every file below ``directories`` once, so that no variant's first cold start pays
    for reading its files from disk while another's were just written (page cache)."""
    for directory in directories:
        for path in directory.rglob("*"):
            if path.is_file():
                path.read_bytes()


def cold_runs(
    bench: Bench,
    function: str,
    events: list[dict[str, Any]],
    env: Path,
    code: Path | None = None,
    layer: Path | None = None,
    handler: str = "app.lambda_handler",
) -> list[dict[str, Any]]:
    """One fresh container per event: first request (init + first invocation), then a second."""
    runs = []
    for event in events:
        with rie_container(bench, function, env, code, layer=layer, handler=handler) as (name, port):
            first_s, first = invoke(port, event, retry_for=15)
            # CPU of everything in the container so far (emulator, runtime, handler): the first
            # request's cost in a unit the machine's load hardly changes, unlike its wall time
            first_cpu_s = bench.cpu_seconds(bench.container_pids(name))
            second_s, _ = invoke(port, event)
            logs = engine.docker("logs", name, stderr=True)
        init = _INIT.search(logs)
        done = _RTDONE.findall(logs)
        status = first.get("statusCode") if isinstance(first, dict) else None
        if init is None or not done or done[0][0] != "success" or (status is not None and status >= 500):
            raise RuntimeError(f"cold start of {function} failed: {str(first)[:300]}\n{logs[-1500:]}")
        runs.append(
            {
                "init_ms": float(init.group(1)),
                "first_invoke_ms": float(done[0][1]),
                "first_request_ms": ms(first_s),
                "first_request_cpu_ms": ms(first_cpu_s),
                "second_request_ms": ms(second_s),
                "status": status,
                "response": first,
            }
        )
    return runs


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("init_ms", "first_invoke_ms", "first_request_ms", "first_request_cpu_ms", "second_request_ms")
    return {key: stats([run[key] for run in runs]) for key in keys} | {"statuses": [r["status"] for r in runs]}


def cold_starts(bench: Bench, runs: int, layer: Path | None = None, baseline: bool = True) -> dict[str, Any]:
    """Every function ``runs`` times (with the built layer, or ``layer``), and a do-nothing
    handler (the runtime's own share)."""
    work = Path(tempfile.mkdtemp(prefix="cold-", dir=WORK))
    envs = {function: env_file(bench, function, work) for function in FUNCTIONS.values()}
    prewarm(layer or BUILD / "BrokerLayer", *(BUILD / function for function in FUNCTIONS.values()))
    results: dict[str, Any] = {}
    what = " (layer without .pyc)" if layer else ""

    if baseline:
        log(f"cold start: do-nothing handler x{runs}")
        code = work / "baseline"
        code.mkdir()
        (code / "app.py").write_text(BASELINE_APP)
        function = "GetSessionFunction"
        results["baseline"] = summarize(cold_runs(bench, function, [{}] * runs, envs[function], code))

    log(f"cold start{what}: create x{runs}")
    events = [create_event() for _ in range(runs)]
    created = cold_runs(bench, FUNCTIONS["create"], events, envs[FUNCTIONS["create"]], layer=layer)
    results["create"] = summarize(created)
    sessions = []
    source_ip = create_event()["requestContext"]["http"]["sourceIp"]
    for run in created:
        body = json.loads(run["response"]["body"])
        sessions.append((body["session_id"], body["token"]))
    for kind in ("get", "terminate"):
        log(f"cold start{what}: {kind} x{runs}")
        events = [session_event(kind, sid, token, source_ip) for sid, token in sessions]
        results[kind] = summarize(cold_runs(bench, FUNCTIONS[kind], events, envs[FUNCTIONS[kind]], layer=layer))
    log(f"cold start{what}: cleanup x{runs}")
    events = [cleanup_event()] * runs
    function = FUNCTIONS["cleanup"]
    results["cleanup"] = summarize(cold_runs(bench, function, events, envs[function], layer=layer))
    return results


def layer_without_pyc() -> Path:
    """A copy of the built layer without its .pyc files: what every cold start costs when the
    build does not byte-compile (Lambda mounts layers read-only, so each one compiles every module
    it imports, and cannot keep the result)."""
    target = OUT / "layer-no-pyc"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(BUILD / "BrokerLayer", target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def import_probe(bench: Bench, reps: int) -> dict[str, Any]:
    """Import timings per function in fresh interpreters, and whether openai is ever loaded
    (after ``import app`` and after one real invocation)."""
    work = Path(tempfile.mkdtemp(prefix="probe-", dir=WORK))
    (work / "probe.py").write_text((Path(__file__).parent / "probe.py").read_text())
    sid, token, source_ip = bench.new_session()
    events = {
        "create": create_event(),
        "get": session_event("get", sid, token, source_ip),
        "terminate": session_event("terminate", sid, token, source_ip),
        "cleanup": cleanup_event(),
    }
    results: dict[str, Any] = {}
    for kind, function in FUNCTIONS.items():
        log(f"imports: {kind}")
        (work / f"{kind}.json").write_text(json.dumps(events[kind]))
        env = env_file(bench, function, work)
        out = engine.docker(
            "run", "--rm", "-m", "512m", "--env-file", str(env),
            "-v", f"{BUILD / function}:/var/task:ro", "-v", f"{BUILD / 'BrokerLayer'}:/opt:ro",
            "-v", f"{work}:/bench:ro", "--entrypoint", "/var/lang/bin/python3.13",
            BASE_IMAGE, "/bench/probe.py", str(reps), f"/bench/{kind}.json",
            timeout=300,
        )  # fmt: skip
        data = json.loads(out.strip().splitlines()[-1])
        data["app_import_ms"] = stats([ms(x) for x in data.pop("app_import_s")])
        data["deps_import_ms"] = stats([ms(x) for x in data.pop("deps_import_s")])
        data["by_package_ms"] = {k: round(v, 1) for k, v in list(data["by_package_ms"].items())[:8]}
        results[kind] = data
    return results
