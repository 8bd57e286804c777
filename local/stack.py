"""The local stack: the broker on the real SAM CLI with moto and the upstream simulators.

    python local/stack.py up     [--api-port 3000] [--port-base 4010] [--name dev] [--no-build]
                                 [--web-port 5173 | --no-web] [--cors-origin ORIGIN ...]
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
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / "local"
SAM = ROOT / ".venv-sam" / "bin" / "sam"
PYTHON = ROOT / ".venv" / "bin" / "python"
MOTO = ROOT / ".venv" / "bin" / "moto_server"
WEB = ROOT / "web"
VITE = WEB / "node_modules" / "vite" / "bin" / "vite.js"
AVATURN_PUBLIC_API = "https://api.avaturn.live"
TABLE, SECRET = "avaturn-sessions-local", "avaturn-session-broker-local"
SIM_KEYS = {
    "avaturn_api_key": "sim-avaturn-key",
    "openai_api_key": "sim-openai-key",
    "cartesia_api_key": "sim-cartesia-key",
}
REAL_KEY_VARS = {
    "avaturn_api_key": "AVATURN_API_KEY",
    "openai_api_key": "OPENAI_API_KEY",
    "cartesia_api_key": "CARTESIA_API_KEY",
}
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def step(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


class StackError(RuntimeError):
    pass


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

    # -- derived ---------------------------------------------------------------------------
    @property
    def state(self) -> Path:
        return ROOT / ".local" / f"stack-{self.name}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

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

    def bridge_ip(self) -> str:
        return self._sh("engine.sh", "bridge-ip").strip()

    def docker_env(self) -> dict[str, str]:
        line = self._sh("engine.sh", "env").strip()  # export DOCKER_HOST=unix://...
        return {"DOCKER_HOST": line.split("=", 1)[1]}

    def moto_url(self) -> str:
        return f"http://{self.bridge_ip()}:{self.moto_port}"

    def function_env(self, bridge: str) -> dict[str, str]:
        """What every function sees (sam local passes only variables the template declares)."""
        env = {
            "AWS_ENDPOINT_URL": f"http://{bridge}:{self.moto_port}",
            "SESSIONS_TABLE_NAME": TABLE,
            "BROKER_SECRET_ID": SECRET,
            "ALLOWED_ENGINES": "openai-realtime,cartesia,external",
            "CARTESIA_AGENT_ID": "agent_local",
            "EXTERNAL_ENGINE_URL": "wss://engine.invalid/ws",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        if self.uses_simulators:
            env |= {
                "AVATURN_API_URL": f"http://{bridge}:{self.port_base}",
                "OPENAI_BASE_URL": f"http://{bridge}:{self.port_base + 1}/v1",
                "CARTESIA_API_URL": f"http://{bridge}:{self.port_base + 2}",
            }
        return env | dict(self.overrides)

    # -- lifecycle -------------------------------------------------------------------------
    def up(self, build: bool = True) -> str:
        started = time.monotonic()
        self.state.mkdir(parents=True, exist_ok=True)
        if self._alive("sam-api"):
            step(f"stack '{self.name}' already running")
            return self.api_url
        step("Docker engine")
        self._sh("engine.sh", "start", echo=True)
        step("Lambda base image (python3.13; built once, about 1 minute)")
        self._sh("base-image.sh", echo=True)
        bridge = self.bridge_ip()
        step(f"moto server on {bridge}:{self.moto_port} (Secrets Manager, DynamoDB)")
        self._spawn("moto", [str(MOTO), "-H", bridge, "-p", str(self.moto_port)])
        self._wait_http(f"http://{bridge}:{self.moto_port}/moto-api/", "moto server")
        step(f"sessions table (from template.yaml) and secret {SECRET}")
        keys = self.sim_keys if self.uses_simulators else dict.fromkeys(SIM_KEYS, "") | self.real_keys
        self.seed(keys)
        if self.uses_simulators:
            step(f"upstream simulators on 127.0.0.1 and {bridge}, ports {self.port_base}-{self.port_base + 3}")
            self._spawn(
                "simulators",
                [str(PYTHON), "-m", "upstream_sim", *self._simulator_args(bridge)],
                env={"PYTHONPATH": str(LOCAL / "simulators")},
            )
            self._wait_http(f"{self.control_url}/health", "simulators")
        else:
            step("real keys given: the functions call the real Avaturn / OpenAI / Cartesia APIs")
        if build:
            step("sam build (layer for python3.13; about 15 s)")
            self._run(
                [str(SAM), "build", "--build-dir", str(self.build_dir), "--cache-dir", str(self.state / "build-cache")],
                log="sam-build.log",
            )
        env_file = self.state / "env.json"
        env_file.write_text(json.dumps({"Parameters": self.function_env(bridge)}, indent=2))
        step(f"sam local start-api on {self.api_url} (warm containers)")
        self._spawn(
            "sam-api",
            self._sam_local(
                "start-api",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.api_port),
                "--warm-containers",
                "EAGER",
                *self._parameter_overrides(),
                env_file=env_file,
            ),
            env=self.docker_env() | AWS_ENV,
        )
        self._wait_http(f"{self.api_url}/sessions/ready-check", "sam local start-api", timeout=120)
        if self.web_port:
            self._serve_web()
        if self.lambda_endpoint:
            step(f"sam local start-lambda on 127.0.0.1:{self.api_port + 1} (warm containers)")
            self._spawn(
                "sam-lambda",
                self._sam_local(
                    "start-lambda",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.api_port + 1),
                    "--warm-containers",
                    "EAGER",
                    env_file=env_file,
                ),
                env=self.docker_env() | AWS_ENV,
            )
            self._wait_http(f"http://127.0.0.1:{self.api_port + 1}/", "sam local start-lambda", timeout=120)
        step(f"ready in {time.monotonic() - started:.0f} s: {self.api_url} (logs: {self.state})")
        if self.web_url:
            step(f"demo page: {self.web_url}/")
        return self.api_url

    def _parameter_overrides(self) -> list[str]:
        """The template's CORS allow-list (HttpApi CorsConfiguration, which sam local honours)."""
        if not self.allowed_origins:
            return []
        origins = ",".join(self.allowed_origins)
        return ["--parameter-overrides", f"ParameterKey=CorsAllowedOrigins,ParameterValue={origins}"]

    def _serve_web(self) -> None:
        """Build the demo page into the stack's own directory and serve it on 127.0.0.1."""
        if not VITE.exists():
            raise StackError("the demo page's packages are missing; run `make setup` (npm ci in web/)")
        if not self._alive("web") and _listening("127.0.0.1", self.web_port or 0):
            raise StackError(f"port {self.web_port} is taken: choose another with --web-port")
        out = self.state / "web"
        step(f"demo page: vite build into {out.relative_to(ROOT)}")
        self._run(
            ["node", str(VITE), "build", "--outDir", str(out), "--emptyOutDir", "--logLevel", "warn"],
            log="web-build.log",
            cwd=WEB,
        )
        config = {"brokerUrl": self.api_url, "avaturnApiHost": self.avaturn_api_host}
        (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        step(f"demo page: vite preview on {self.web_url}")
        self._spawn(
            "web",
            [
                "node",
                str(VITE),
                "preview",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.web_port),
                "--strictPort",
                "--outDir",
                str(out),
            ],
            cwd=WEB,
        )
        self._wait_http(f"{self.web_url}/config.json", "the demo page server")

    @property
    def build_dir(self) -> Path:
        """Each stack builds into its own directory, so two stacks never rebuild under each other."""
        return self.state / "build"

    def _sam_local(self, command: str, *args: str, env_file: Path) -> list[str]:
        template = self.build_dir / "template.yaml"
        if not template.exists():
            raise StackError(f"no build for stack '{self.name}' yet: run it once without --no-build")
        return [
            str(SAM),
            "local",
            command,
            *args,
            "--template",
            str(template),
            "--env-vars",
            str(env_file),
            "--skip-pull-image",
            "--container-host-interface",
            "127.0.0.1",
        ]

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
        """SIGTERM to everything this stack started (by PID), then wait; SIGKILL what lingers."""
        found = {name: self._pid(name) for name in ("web", "sam-lambda", "sam-api", "simulators", "moto")}
        pids = {name: pid for name, pid in found.items() if pid is not None}
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for name, pid in pids.items():
            while _exists(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _exists(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self._pidfile(name).unlink(missing_ok=True)
            step(f"stopped {name} (pid {pid})")
        self._remove_containers()

    def _remove_containers(self) -> None:
        """sam local leaves its warm containers behind when stopped: remove this stack's (the
        ones that mount its build directory), running or exited."""
        if not engine_running():
            return
        env = os.environ | self.docker_env()
        ids = subprocess.run(["docker", "ps", "-aq"], env=env, capture_output=True, text=True, check=False).stdout
        if not ids.split():
            return
        mounts = subprocess.run(
            ["docker", "inspect", "--format", "{{.Id}}{{range .Mounts}} {{.Source}}{{end}}", *ids.split()],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        ours = [
            line.split()[0]
            for line in mounts.splitlines()
            if any(src.startswith(str(self.build_dir)) for src in line.split()[1:])
        ]
        if ours:
            subprocess.run(["docker", "rm", "-f", *ours], env=env, capture_output=True, check=False)
            step(f"removed {len(ours)} container(s) of stack '{self.name}'")

    def status(self) -> dict[str, bool]:
        return {name: self._alive(name) for name in ("moto", "simulators", "sam-api", "sam-lambda", "web")}

    # -- helpers for tests and tools -------------------------------------------------------
    def seed(self, keys: Mapping[str, str]) -> None:
        sys.path.insert(0, str(ROOT))
        from local.aws_resources import create_table, put_secret

        create_table(self.aws_client("dynamodb"), TABLE)
        put_secret(self.aws_client("secretsmanager"), SECRET, dict(keys))

    def aws_client(self, service: str) -> Any:
        import boto3

        session = boto3.session.Session(
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=AWS_ENV["AWS_REGION"],
        )
        return session.client(service, endpoint_url=self.moto_url())  # type: ignore[call-overload]

    def invoke(self, function: str, event: Path, overrides: Mapping[str, str] | None = None) -> Any:
        """``sam local invoke`` one function with the stack's environment (plus overrides)."""
        env_file = self.state / f"invoke-{function}.json"
        env = self.function_env(self.bridge_ip()) | dict(overrides or {})
        env_file.write_text(json.dumps({"Parameters": env}))
        out = subprocess.run(
            self._sam_local("invoke", function, "--event", str(event), env_file=env_file),
            cwd=ROOT,
            env=os.environ | self.docker_env() | AWS_ENV,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        with (self.state / "sam-invoke.log").open("a") as log:
            log.write(out.stderr)
        self.last_invoke_log = out.stderr
        if out.returncode != 0:
            raise StackError(f"sam local invoke {function} failed: {out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def invoke_warm(self, function: str, event: Path) -> Any:
        """Invoke through the warm ``sam local start-lambda`` endpoint (the real runtime, faster)."""
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "lambda",
            endpoint_url=f"http://127.0.0.1:{self.api_port + 1}",
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - local
            config=Config(read_timeout=150, retries={"max_attempts": 0}),
        )
        out = client.invoke(FunctionName=function, Payload=event.read_bytes())
        if out.get("FunctionError"):
            raise StackError(f"{function} failed: {out['Payload'].read()[:2000]!r}")
        return json.loads(out["Payload"].read())

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.state.glob("*.log")))

    # -- processes -------------------------------------------------------------------------
    def _pidfile(self, name: str) -> Path:
        return self.state / f"{name}.pid"

    def _alive(self, name: str) -> bool:
        pid = self._pid(name)
        return pid is not None and _exists(pid)

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None, cwd: Path = ROOT) -> None:
        if self._alive(name):
            return
        log = (self.state / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=os.environ | AWS_ENV | dict(env or {}),
            start_new_session=True,
        )
        self._pidfile(name).write_text(str(proc.pid))

    def _pid(self, name: str) -> int | None:
        try:
            return int(self._pidfile(name).read_text())
        except (OSError, ValueError):
            return None

    def _wait_http(self, url: str, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=2)  # noqa: S310 - our own local URL
                return
            except urllib.error.HTTPError:
                return  # it answered
            except OSError:
                time.sleep(0.2)
        raise StackError(f"{what} did not come up within {timeout:.0f} s; see the logs in {self.state}")

    def _sh(self, script: str, *args: str, echo: bool = False) -> str:
        out = subprocess.run(
            ["bash", str(LOCAL / script), *args], cwd=ROOT, capture_output=True, text=True, check=False
        )
        if echo and out.stderr:
            sys.stderr.write("".join(f"    {line}\n" for line in out.stderr.splitlines()))
        if out.returncode != 0:
            raise StackError(f"local/{script} {' '.join(args)} failed:\n{out.stderr[-3000:]}")
        return out.stdout

    def _run(self, argv: list[str], log: str, cwd: Path = ROOT) -> None:
        with (self.state / log).open("ab") as handle:
            code = subprocess.call(argv, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, env=os.environ | AWS_ENV)
        if code != 0:
            tail = (self.state / log).read_text(errors="replace")[-3000:]
            raise StackError(f"{' '.join(Path(a).name for a in argv[:2])} failed:\n{tail}")


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def engine_running() -> bool:
    return (
        subprocess.run(["bash", str(LOCAL / "engine.sh"), "status"], capture_output=True, check=False).returncode == 0
    )


@contextlib.contextmanager
def running(stack: Stack) -> Iterator[Stack]:
    """A stack for one test or benchmark run: fresh logs, up, and afterwards everything it started
    stopped again, the Docker engine included when it was not running before."""
    engine_was_running = engine_running()
    stack.down()  # a stale stack of an interrupted run
    for log in stack.state.glob("*.log"):
        log.unlink()
    try:
        stack.up()
        yield stack
    finally:
        stack.down()
        if not engine_was_running:
            subprocess.run(["bash", str(LOCAL / "engine.sh"), "stop"], check=False)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours is gone for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


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
    args = parser.parse_args(argv)
    stack = Stack(
        name=args.name,
        api_port=args.api_port,
        port_base=args.port_base,
        cors_origins=tuple(args.cors_origin),
        web_port=None if args.no_web else args.web_port,
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
