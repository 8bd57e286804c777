"""The local stack: the broker on the real SAM CLI with moto and the upstream simulators.

    python local/stack.py up     [--api-port 3000] [--port-base 4010] [--name dev] [--no-build]
                                 [--web-port 5173 | --no-web] [--cors-origin ORIGIN ...]
                                 [--profiles profiles.example.json]
    python local/stack.py down   [--name dev]
    python local/stack.py status [--name dev]

``up`` prints one progress line per step and ends with the API URL and the demo page's URL. It reuses what is already
there (Docker engine, base image, a running stack of the same name). Every process it starts is
recorded by PID under ``.local/stack-<name>/`` and ``down`` stops exactly those.

The demo page (``web/``) is built with Vite into the stack's state directory, next to a
``config.json`` naming the broker and the Avaturn API host, and served by ``vite preview`` on
127.0.0.1. Its origin is the broker's CORS allow-list (``CorsAllowedOrigins``) and the
simulator's, together with any ``--cors-origin``.

With real keys in the environment (``AVATURN_API_KEY`` and ``OPENAI_API_KEY`` and/or
``CARTESIA_API_KEY``) the functions call the real services instead of the simulators; the keys go
into moto's Secrets Manager, never into a file or the functions' environment.

The profiles document (``profiles.example.json``, or another one given as ``Stack.profiles``) goes
into moto's Parameter Store; each secret field it names for an external engine's headers gets an
``Authorization`` header with a random bearer token in the secret.
"""

# This module composes the stack from its jobs: local.paths (where things are, fixed names),
# local.processes (spawn, wait, stop by PID), local.engine (the Docker engine and base image),
# local.sam (build, start-api, start-lambda, invoke) and local.web (the demo page). The
# integration, e2e and benchmark tiers all drive it through `Stack` and `running`.

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as `python local/stack.py`: import `local.*` from the repository
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import contextlib
import json
import os
import secrets
import shutil
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from local import engine, web
from local.aws_resources import create_table, put_profiles, put_secret
from local.paths import (
    AVATURN_PUBLIC_API,
    AWS_ENV,
    MOTO,
    PROFILES,
    PROFILES_EXAMPLE,
    PYTHON,
    REAL_KEY_VARS,
    SECRET,
    SIM_KEYS,
    SIMULATORS,
    TABLE,
    state_dir,
)
from local.processes import Processes, StackError, step
from local.sam import Sam, invoke_warm

# The stack's processes, in the order `down` stops them.
PROCESSES = ("web", "sam-lambda", "sam-api", "simulators", "moto")


@dataclass
class Stack:
    name: str = "dev"
    api_port: int = 3000
    port_base: int = 4010  # simulators: +0 avaturn, +1 openai, +2 cartesia, +3 control; +9 moto
    overrides: Mapping[str, str] = field(default_factory=dict)
    cors_origins: tuple[str, ...] = ()
    sim_keys: Mapping[str, str] = field(default_factory=lambda: dict(SIM_KEYS))
    lambda_endpoint: bool = False  # also run `sam local start-lambda` (warm) on api_port + 1
    last_invoke_log: str = field(default="", repr=False)
    web_port: int | None = None  # serve the demo page (web/) on 127.0.0.1:web_port
    # the moto server's command (host and port are appended): moto_server behind the DynamoDB
    # fault middleware (local/moto_faults.py, off until a test sets a fault); the benchmarks run
    # a patched one
    moto_command: tuple[str, ...] = MOTO
    profiles: Path = PROFILES_EXAMPLE  # the profiles document seeded into Parameter Store

    # -- derived ---------------------------------------------------------------------------
    @property
    def state(self) -> Path:
        return state_dir(self.name)

    @property
    def processes(self) -> Processes:
        return Processes(self.state)

    @property
    def sam(self) -> Sam:
        return Sam(self.name, self.processes)

    @property
    def build_dir(self) -> Path:
        """Each stack builds into its own directory, so two stacks never rebuild under each other."""
        return self.sam.build_dir

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def lambda_port(self) -> int:
        return self.api_port + 1

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.port_base + 3}/_control"

    @property
    def web_url(self) -> str | None:
        return f"http://127.0.0.1:{self.web_port}" if self.web_port else None

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        """Browser origins the broker and the simulator accept: the demo page's and any given."""
        return tuple(dict.fromkeys(((self.web_url,) if self.web_url else ()) + self.cors_origins))

    @property
    def avaturn_api_host(self) -> str:
        """Where the browser's web SDK finds Avaturn: the simulator, or the real service."""
        return f"http://127.0.0.1:{self.port_base}" if self.uses_simulators else AVATURN_PUBLIC_API

    @property
    def moto_port(self) -> int:
        return self.port_base + 9

    @property
    def real_keys(self) -> dict[str, str]:
        return {k: os.environ[v] for k, v in REAL_KEY_VARS.items() if os.environ.get(v)}

    @property
    def uses_simulators(self) -> bool:
        return "avaturn_api_key" not in self.real_keys

    def dynamodb_faults(self, faults: Mapping[str, Any] | None) -> dict[str, Any]:
        """Set (or, with None, clear) the DynamoDB faults of the stack's moto server
        (``local/moto_faults.py``); returns the faults in force and how many were injected."""
        method = "PUT" if faults is not None else "DELETE"
        body = json.dumps(faults).encode() if faults is not None else None
        url = f"{self.moto_url()}/_faults/dynamodb"
        request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - the stack's own moto
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the stack's own moto
            result: dict[str, Any] = json.loads(response.read())
        return result

    def moto_url(self) -> str:
        return f"http://{engine.bridge_ip()}:{self.moto_port}"

    def function_env(self, bridge: str) -> dict[str, str]:
        """What every function sees (sam local passes only variables the template declares)."""
        env = {
            "AWS_ENDPOINT_URL": f"http://{bridge}:{self.moto_port}",
            "SESSIONS_TABLE_NAME": TABLE,
            "BROKER_SECRET_ID": SECRET,
            "PROFILES_PARAMETER_NAME": PROFILES,
            "PROFILES_CACHE_SECONDS": "5",  # an edit of the document shows within 5 s
            "ALLOWED_ENGINES": "openai-realtime,cartesia,external",
            "POWERTOOLS_TRACE_DISABLED": "true",
            # sam local does not enforce the /admin/ routes' IAM authorization (127.0.0.1 only)
            "ADMIN_REQUIRE_IAM": "false",
        }
        if self.uses_simulators:
            env |= {
                "AVATURN_API_URL": f"http://{bridge}:{self.port_base}",
                "AVATURN_SDK_API_HOST": self.avaturn_api_host,  # the browser's way to the simulator
                "OPENAI_BASE_URL": f"http://{bridge}:{self.port_base + 1}/v1",
                "CARTESIA_API_URL": f"http://{bridge}:{self.port_base + 2}",
            }
        return env | dict(self.overrides)

    # -- lifecycle -------------------------------------------------------------------------
    def up(self, build: bool = True) -> str:
        """Bring the stack up (reusing what runs); its API URL."""
        started = time.monotonic()
        procs = self.processes
        self.state.mkdir(parents=True, exist_ok=True)
        if procs.alive("sam-api"):
            step(f"stack '{self.name}' already running")
            return self.api_url
        step("Docker engine")
        engine.start()
        step("Lambda base image (python3.13; built once, about 1 minute)")
        engine.build_base_image()
        bridge = engine.bridge_ip()
        step(f"moto server on {bridge}:{self.moto_port} (Secrets Manager, DynamoDB)")
        procs.spawn("moto", [*self.moto_command, "-H", bridge, "-p", str(self.moto_port)])
        procs.wait_http(f"http://{bridge}:{self.moto_port}/moto-api/", "moto server")
        step(f"sessions table (from template.yaml), secret {SECRET}, profiles {PROFILES}")
        keys = self.sim_keys if self.uses_simulators else dict.fromkeys(SIM_KEYS, "") | self.real_keys
        self.seed(keys)
        if self.uses_simulators:
            step(f"upstream simulators on 127.0.0.1 and {bridge}, ports {self.port_base}-{self.port_base + 3}")
            procs.spawn(
                "simulators",
                [str(PYTHON), "-m", "upstream_sim", *self._simulator_args(bridge)],
                env={"PYTHONPATH": str(SIMULATORS)},
            )
            procs.wait_http(f"{self.control_url}/health", "simulators")
        else:
            step("real keys given: the functions call the real Avaturn / OpenAI / Cartesia APIs")
        if build:
            self.sam.build()
        env_file = self.state / "env.json"
        env_file.write_text(json.dumps({"Parameters": self.function_env(bridge)}, indent=2))
        self.sam.start_api(self.api_port, env_file, self.allowed_origins)
        if self.web_port:
            web.serve(procs, self.web_port, self.api_url, self.avaturn_api_host)
        if self.lambda_endpoint:
            self.sam.start_lambda(self.lambda_port, env_file)
        step(f"ready in {time.monotonic() - started:.0f} s: {self.api_url} (logs: {self.state})")
        if self.web_url:
            step(f"demo page: {self.web_url}/")
        return self.api_url

    @contextlib.contextmanager
    def reconfigured(self, overrides: Mapping[str, str]) -> Iterator[Stack]:
        """The running stack with its functions' environment changed by ``overrides`` while the
        block runs: ``sam local start-api`` (and ``start-lambda``) restart on the same build with
        the new environment, and again with the old one afterwards. moto and the simulators keep
        running (their state too)."""
        before = dict(self.overrides)
        self._restart_functions({**before, **overrides})
        try:
            yield self
        finally:
            self._restart_functions(before)

    def _restart_functions(self, overrides: Mapping[str, str]) -> None:
        self.processes.stop(("sam-lambda", "sam-api"))
        engine.remove_containers_mounting(self.build_dir)
        self.overrides = dict(overrides)
        env_file = self.state / "env.json"
        env_file.write_text(json.dumps({"Parameters": self.function_env(engine.bridge_ip())}, indent=2))
        self.sam.start_api(self.api_port, env_file, self.allowed_origins)
        if self.lambda_endpoint:
            self.sam.start_lambda(self.lambda_port, env_file)

    def _simulator_args(self, bridge: str) -> list[str]:
        base, keys = self.port_base, self.sim_keys
        args = ["--host", "127.0.0.1", "--also-host", bridge]
        for offset, name in enumerate(("avaturn", "openai", "cartesia", "control")):
            args += [f"--{name}-port", str(base + offset)]
        for name in ("avaturn", "openai", "cartesia"):
            args += [f"--{name}-key", keys[f"{name}_api_key"]]
        for origin in self.allowed_origins:
            args += ["--cors-origin", origin]
        return args

    def down(self) -> None:
        """SIGTERM to everything this stack started (by PID), then wait; SIGKILL what lingers.
        Then the warm containers `sam local` leaves behind (those mounting this stack's build)."""
        self.processes.stop(PROCESSES)
        removed = engine.remove_containers_mounting(self.build_dir)
        if removed:
            step(f"removed {removed} container(s) of stack '{self.name}'")

    def status(self) -> dict[str, bool]:
        return {name: self.processes.alive(name) for name in ("moto", "simulators", "sam-api", "sam-lambda", "web")}

    # -- helpers for tests and tools -------------------------------------------------------
    def pid(self, name: str) -> int | None:
        """The recorded PID of one of the stack's processes (``moto``, ``simulators``, ...)."""
        return self.processes.pid(name)

    def seed(self, keys: Mapping[str, str]) -> None:
        """The sessions table (from template.yaml), the profiles document (``profiles``) and the
        broker secret, in moto. The secret holds ``keys`` and, for each field the document names
        for an external engine's headers, ``{"Authorization": "Bearer <random>"}``."""
        create_table(self.aws_client("dynamodb"), TABLE)
        document = self.profiles.read_text()
        put_profiles(self.aws_client("ssm"), PROFILES, document)
        fields = {
            p["external"]["headers_secret_field"]
            for p in json.loads(document)["profiles"].values()
            if p.get("external", {}).get("headers_secret_field")
        }
        headers = {f: {"Authorization": f"Bearer engine-{secrets.token_hex(12)}"} for f in sorted(fields)}
        put_secret(self.aws_client("secretsmanager"), SECRET, {**keys, **headers})

    def aws_client(self, service: str) -> Any:
        """A boto3 client of ``service`` on the stack's moto server."""
        import boto3

        session = boto3.session.Session(
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=AWS_ENV["AWS_REGION"],
        )
        return session.client(service, endpoint_url=self.moto_url())  # type: ignore[call-overload]

    def invoke(self, function: str, event: Path, overrides: Mapping[str, str] | None = None) -> Any:
        """``sam local invoke`` one function with the stack's environment (plus overrides)."""
        env = self.function_env(engine.bridge_ip()) | dict(overrides or {})
        result, self.last_invoke_log = self.sam.invoke(function, event, env)
        return result

    def invoke_warm(self, function: str, event: Path) -> Any:
        """Invoke through the warm ``sam local start-lambda`` endpoint (the real runtime, faster)."""
        return invoke_warm(self.lambda_port, function, event)

    def logs(self) -> str:
        return self.processes.logs()


@contextlib.contextmanager
def running(stack: Stack) -> Iterator[Stack]:
    """A stack for one test or benchmark run: fresh logs, up, and afterwards everything it started
    stopped again, the Docker engine included when it was not running before and no other
    container uses it."""
    engine_was_running = engine.running()
    stack.down()  # a stale stack of an interrupted run
    for log in stack.state.glob("*.log"):
        log.unlink()
    try:
        stack.up()
        yield stack
    finally:
        stack.down()
        if not engine_was_running:
            busy = engine.container_ids() if engine.running() else []
            if busy:
                step(f"leaving the Docker engine running: {len(busy)} other container(s) use it")
            else:
                engine.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--name", default="dev")
    parser.add_argument("--api-port", type=int, default=3000)
    parser.add_argument("--port-base", type=int, default=4010)
    parser.add_argument("--no-build", action="store_true", help="reuse the last sam build")
    parser.add_argument("--cors-origin", action="append", default=[], help="another browser origin to allow")
    parser.add_argument("--web-port", type=int, default=5173, help="port of the demo page (127.0.0.1)")
    parser.add_argument("--no-web", action="store_true", help="do not build and serve the demo page")
    parser.add_argument("--profiles", type=Path, default=PROFILES_EXAMPLE, help="the profiles document to seed")
    args = parser.parse_args(argv)
    stack = Stack(
        name=args.name,
        api_port=args.api_port,
        port_base=args.port_base,
        cors_origins=tuple(args.cors_origin),
        web_port=None if args.no_web else args.web_port,
        profiles=args.profiles,
    )
    try:
        if args.command == "up":
            print(stack.up(build=not args.no_build))
            if stack.web_url:
                print(f"Demo page: {stack.web_url}/")
        elif args.command == "down":
            stack.down()
        else:
            print(json.dumps(stack.status()))
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if shutil.which("bash") is None:
        sys.exit("bash is required")
    sys.exit(main(sys.argv[1:]))
