"""``POST /sessions`` side by side: the broker's create function, the seed-style port of the
documentation's example (``baselines/seed_style.py``) and the floor (``baselines/floor.py``).

All three are built the same way (``functions/function.mk``, byte-compiled; the seed-style's
layer from its own requirements with the BrokerLayer's pip flags and ``functions/compile-pyc.sh``;
the floor needs no layer) and run in the same harness, interleaved so that the machine's load
falls on all three alike: fresh emulator containers of the Lambda image for the cold figures,
one warm container each for the warm ones, with the create function's environment and memory,
against the same simulators and moto server. Each create comes from its own address among 50
(anonymous mode: the owner), so no cap is reached.

Per variant: cold init and first request (wall time, and the container's CPU time up to then);
warm latency (client through the emulator's invoke API, and the handler's own time from the
emulator's ``RTDONE``) and the container's CPU time per warm request; new TCP connections per warm
request to each upstream (client ports the simulators had not seen from that container before);
AWS calls per request (moto's recorder), ``GetSecretValue`` among them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.cold import cold_runs, env_file, invoke, prewarm, rie_container, summarize
from benchmarks.common import BUILD, OUT, WORK, Bench, create_event, log, ms, stats
from local import engine
from local.paths import ROOT

FUNCTION = "CreateSessionFunction"  # whose environment and memory size all three run with
BASELINES = Path(__file__).parent / "baselines"
FUNCTIONS_DIR = ROOT / "functions"
GET_SECRET = "secretsmanager.GetSecretValue"
SEED_LAYER = OUT / "versus" / "seed-style-layer"
_RTDONE = re.compile(r"INVOKE RTDONE\(status: (\w+)[^)]*duration: ([\d.]+)ms\)")


@dataclass(frozen=True)
class Variant:
    """A create handler as built: its code (/var/task), layer (/opt) and handler."""

    name: str
    code: Path
    layer: Path
    handler: str


def _function(source: str, target: Path) -> Path:
    """``source`` (a module in baselines/) built by the functions' own recipe."""
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(
        ["make", "--no-print-directory", "-f", str(FUNCTIONS_DIR / "function.mk"), "build-Baseline",
         f"ARTIFACTS_DIR={target}", f"FUNCTION_SOURCES={source}"],
        cwd=BASELINES, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return target


def _layer(requirements: Path, target: Path) -> Path:
    """A layer of ``requirements``, installed with the BrokerLayer's pip flags and byte-compiled."""
    makefile = (FUNCTIONS_DIR / "shared" / "Makefile").read_text()
    flags = re.search(r"^TARGET_FLAGS := (.+)$", makefile, re.MULTILINE)
    assert flags, "TARGET_FLAGS not found in functions/shared/Makefile"
    shutil.rmtree(target, ignore_errors=True)
    python = target / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input", "--no-compile",
         "--target", str(python), *flags.group(1).split(), "-r", str(requirements)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    subprocess.run(
        ["bash", str(FUNCTIONS_DIR / "compile-pyc.sh"), str(python), "/opt/python"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return target


def build() -> dict[str, Variant]:
    """The three variants, the two baselines built into ``artifacts/bench/versus/``."""
    out = OUT / "versus"
    empty = out / "no-layer"
    empty.mkdir(parents=True, exist_ok=True)
    log("versus: building the seed-style port (its layer: pip install + compile) and the floor")
    seed_layer = _layer(BASELINES / "seed_style.requirements.txt", SEED_LAYER)
    return {
        "broker": Variant("broker", BUILD / FUNCTION, BUILD / "BrokerLayer", "app.lambda_handler"),
        "seed-style": Variant(
            "seed-style", _function("seed_style.py", out / "seed-style"), seed_layer, "seed_style.lambda_handler"
        ),
        "floor": Variant("floor", _function("floor.py", out / "floor"), empty, "floor.lambda_handler"),
    }


def _event(number: int) -> dict[str, Any]:
    event = create_event()
    address = f"198.51.100.{number % 50 + 1}"
    event["requestContext"]["http"]["sourceIp"] = address
    event["headers"]["x-forwarded-for"] = address
    return event


def cold(bench: Bench, variants: dict[str, Variant], runs: int, env: Path) -> dict[str, Any]:
    """``runs`` fresh containers per variant, taken in turns."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    prewarm(*(path for v in variants.values() for path in (v.code, v.layer)))
    for run in range(runs):
        log(f"versus: cold starts, round {run + 1}/{runs}")
        for v in variants.values():
            found[v.name] += cold_runs(bench, FUNCTION, [_event(run)], env, v.code, v.layer, v.handler)
    return {name: summarize(values) for name, values in found.items()}


class _Recording:
    """moto's request recording, read on from where the last read stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def calls(self) -> Counter[str]:
        found: Counter[str] = Counter()
        if not self.path.exists():
            return found
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        complete = data.rfind(b"\n") + 1
        self.offset += complete
        for line in data[:complete].splitlines():
            if line.strip():
                headers = {k.lower(): v for k, v in json.loads(line)["headers"].items()}
                found[headers.get("x-amz-target", "other")] += 1
        return found


def _container_ip(name: str) -> str:
    return engine.docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", name).strip()


def _ports(bench: Bench, ip: str, since: int, until: int | None = None) -> dict[str, set[str]]:
    """Client ports of container ``ip`` per upstream, in the requests after ``since`` (up to ``until``)."""
    found: dict[str, set[str]] = defaultdict(set)
    for request in bench.requests_since(since):
        client_ip, port = request["client"].rsplit(":", 1)
        if client_ip == ip and (until is None or request["seq"] <= until):
            found[request["upstream"]].add(port)
    return found


def warm(bench: Bench, variants: dict[str, Variant], n: int, env: Path) -> dict[str, Any]:
    """One container per variant: a first (untimed) create, then ``n`` timed ones each, in turns."""
    with ExitStack() as stack:
        ports: dict[str, tuple[str, int]] = {
            v.name: stack.enter_context(rie_container(bench, FUNCTION, env, v.code, layer=v.layer, handler=v.handler))
            for v in variants.values()
        }
        ips = {name: _container_ip(container) for name, (container, _) in ports.items()}
        seq0 = bench.last_seq()
        for _, port in ports.values():
            invoke(port, _event(0), retry_for=15)
        seq1 = bench.last_seq()
        bench.moto("start-recording")
        recording = _Recording(bench.recording)
        pids = {name: bench.container_pids(container) for name, (container, _) in ports.items()}
        cpu0 = {name: bench.cpu_seconds(group) for name, group in pids.items()}
        latency: dict[str, list[float]] = defaultdict(list)
        calls: dict[str, Counter[str]] = defaultdict(Counter)
        log(f"versus: {n} warm creates per variant, in turns")
        for number in range(n):
            for name, (_, port) in ports.items():
                elapsed, response = invoke(port, _event(number))
                if not isinstance(response, dict) or response.get("statusCode") != 201:
                    raise RuntimeError(f"versus: {name} answered {str(response)[:300]}")
                latency[name].append(ms(elapsed))
                calls[name] += recording.calls()
        bench.moto("stop-recording")
        cpu = {name: bench.cpu_seconds(group) - cpu0[name] for name, group in pids.items()}
        logs = {name: engine.docker("logs", container, stderr=True) for name, (container, _) in ports.items()}
    out: dict[str, Any] = {"invocations": n}
    for name in ports:
        handler = [float(d) for status, d in _RTDONE.findall(logs[name]) if status == "success"][1:]  # not the first
        first, timed = _ports(bench, ips[name], seq0, seq1), _ports(bench, ips[name], seq1)
        # the port numbers of one container do not repeat within a run, so any port of the timed
        # phase that the first request did not use is a new connection
        new = {upstream: len(used - first.get(upstream, set())) / n for upstream, used in timed.items()}
        out[name] = {
            "client_ms": stats(latency[name]),
            "handler_ms": stats(handler),
            "cpu_ms_per_request": round(ms(cpu[name]) / n, 2),
            "client_samples_ms": [round(x, 2) for x in latency[name]],
            "new_connections_per_request": new,
            "aws_calls_per_request": {op: round(c / n, 2) for op, c in sorted(calls[name].items())},
            "get_secret_value_per_request": round(calls[name][GET_SECRET] / n, 2),
        }
    return out


def versus(bench: Bench, cold_runs_per_variant: int, warm_invocations: int) -> dict[str, Any]:
    """Build the baselines, then the cold and the warm comparison; the load average around them."""
    variants = build()
    work = Path(tempfile.mkdtemp(prefix="versus-", dir=WORK))
    env = env_file(bench, FUNCTION, work)
    load = [round(os.getloadavg()[0], 2)]
    result: dict[str, Any] = {"cold": cold(bench, variants, cold_runs_per_variant, env)}
    load.append(round(os.getloadavg()[0], 2))
    result["warm"] = warm(bench, variants, warm_invocations, env)
    load.append(round(os.getloadavg()[0], 2))
    result["load_average"] = load
    result["variants"] = {v.name: {"handler": v.handler} for v in variants.values()}
    return result
