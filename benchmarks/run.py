"""The benchmark suite, end to end: `make bench` (or ``.venv/bin/python -m benchmarks.run``).

Brings up a private local stack (name ``bench``; API on 127.0.0.1:3300, start-lambda on :3301,
simulators and moto on 4310-4319; ``--api-port`` and ``--port-base`` move them), measures, prints
a markdown report on stdout, writes ``artifacts/bench/results.json`` and ``results.md``, and stops
everything it started (the Docker engine too, when it was not running before and nothing else
uses it). About 8 minutes.

What is measured, and how, is in docs/benchmarks.md and in each module's docstring.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import cleanup, cold, report, sizes, versus, warm
from benchmarks.common import OUT, PATCHED_MOTO, STACK, WORK, Bench, log
from local.paths import MOTO
from local.processes import StackError
from local.stack import Stack, running

# memory sizes whose Lambda CPU share (1 vCPU at 1,769 MB, proportional below) the cleanup runs with
CLEANUP_MEMORY_SIZES = [512, 1769]


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "host_python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _time_wait() -> int | None:
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            fields = line.split()
            return int(fields[fields.index("tw") + 1])
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh containers per function (default 5)")
    parser.add_argument("--import-reps", type=int, default=3, help="fresh interpreters per import timing")
    parser.add_argument("--per-route", type=int, default=200, help="warm invocations per route (default 200)")
    parser.add_argument("--cleanup-sessions", type=int, default=1000)
    parser.add_argument("--cleanup-runs", type=int, default=3)
    parser.add_argument("--cleanup-latency", type=float, default=0.1, help="seconds added to each Avaturn DELETE")
    parser.add_argument("--stock-moto", action="store_true", help="run stock moto_server (slow transactions)")
    parser.add_argument("--api-port", type=int, default=3300, help="the stack's API port (start-lambda: +1)")
    parser.add_argument("--port-base", type=int, default=4310, help="first of the simulators' and moto's ports (10)")
    args = parser.parse_args(argv)

    started = time.monotonic()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    recording = OUT / "moto-recording.jsonl"
    recording.unlink(missing_ok=True)
    os.environ["MOTO_RECORDER_FILEPATH"] = str(recording)  # inherited by the moto server we start
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "settings": vars(args),
    }
    stack = Stack(
        name=STACK,
        api_port=args.api_port,
        port_base=args.port_base,
        # the warm runs hold up to 50 sessions at once (blocks of 50), all from 127.0.0.1
        overrides={"MAX_ACTIVE_SESSIONS_PER_OWNER": "100"},
        lambda_endpoint=True,
        moto_command=MOTO if args.stock_moto else PATCHED_MOTO,
    )
    bench = Bench(stack, recording=recording)
    try:
        log("stack up (moto, simulators, sam build, start-api, start-lambda)")
        with running(stack):
            results["stack_up_s"] = round(time.monotonic() - started, 1)
            measure(bench, args, results)
            log("stopping the stack")
    except (StackError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(f"logs: {stack.state}", file=sys.stderr)
        return 1
    finally:
        bench.http.close()
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["machine"]["tcp_time_wait_at_end"] = _time_wait()
    results["total_s"] = round(time.monotonic() - started, 1)
    results["targets"] = report.targets(results)
    text = report.markdown(results)
    (OUT / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (OUT / "results.md").write_text(text)
    print(text)
    log(f"done in {results['total_s']:.0f} s: {OUT / 'results.json'}")
    return 0


def measure(bench: Bench, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Every measurement, in order, on the running stack; each adds its part to ``results``."""
    for function in ("CreateSessionFunction", "GetSessionFunction", "TerminateSessionFunction"):
        bench.function_env(function)  # read now, while only start-api's fresh containers exist
    results["config"] = {
        k: v
        for k, v in bench.function_env("CleanupSessionsFunction").items()
        if k in {"CLEANUP_CONCURRENCY", "SECRET_CACHE_SECONDS", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"}
    }
    results["artifacts"] = sizes.artifact_sizes()
    results["warm"] = warm.warm_routes(bench, args.per_route, block=50)
    log(f"warm: cleanup with nothing due x{args.per_route}")
    results["warm_cleanup"] = warm.warm_cleanup(bench, args.per_route)
    results["cleanup"] = cleanup.cleanup_runs(bench, args.cleanup_sessions, args.cleanup_runs, args.cleanup_latency)
    results["cleanup_cpu_share"] = cleanup.cpu_share_runs(
        bench, args.cleanup_sessions, args.cleanup_latency, CLEANUP_MEMORY_SIZES
    )
    results["versus"] = versus.versus(bench, args.cold_runs, args.per_route)
    results["artifacts"]["seed-style layer"] = sizes.measure(versus.SEED_LAYER)
    results["cold"] = cold.cold_starts(bench, args.cold_runs)
    log("what the byte-compiled layer saves: the same cold starts with the layer's .pyc files removed")
    source_only = cold.layer_without_pyc()
    results["artifacts"]["layer without .pyc"] = sizes.measure(source_only)
    results["cold_layer_without_pyc"] = cold.cold_starts(bench, args.cold_runs, layer=source_only, baseline=False)
    results["imports"] = cold.import_probe(bench, args.import_reps)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
