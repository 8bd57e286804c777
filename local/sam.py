"""The SAM CLI for one local stack: ``sam build`` into the stack's own directory (so two stacks
never rebuild under each other's warm containers), ``sam local start-api`` and ``start-lambda``
with warm containers, and single invocations, cold (``sam local invoke``: a fresh container, as
the schedule starts one) or warm (through ``start-lambda``'s Lambda API)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local import engine
from local.paths import AWS_ENV, ROOT, SAM
from local.processes import Processes, StackError, step


@dataclass(frozen=True)
class Sam:
    """The SAM CLI on the build of stack ``name``, its processes and logs in ``procs``."""

    name: str
    procs: Processes

    @property
    def build_dir(self) -> Path:
        """Each stack builds into its own directory, so two stacks never rebuild under each other."""
        return self.procs.state / "build"

    def build(self) -> None:
        """``sam build`` (the layer for python3.13 and the functions; log: ``sam-build.log``)."""
        step("sam build (layer for python3.13; about 15 s)")
        cache = self.procs.state / "build-cache"
        self.procs.run(
            [str(SAM), "build", "--build-dir", str(self.build_dir), "--cache-dir", str(cache)], log="sam-build.log"
        )

    def local(self, command: str, *args: str, env_file: Path) -> list[str]:
        """The command line of ``sam local COMMAND ARGS`` on this stack's build."""
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

    def start_api(self, port: int, env_file: Path, cors_origins: Sequence[str] = ()) -> None:
        """``sam local start-api`` on 127.0.0.1:``port`` (process ``sam-api``), until it answers.
        ``cors_origins`` become the template's CORS allow-list (which sam local honours)."""
        step(f"sam local start-api on http://127.0.0.1:{port} (warm containers)")
        args = ("--host", "127.0.0.1", "--port", str(port), "--warm-containers", "EAGER")
        argv = self.local("start-api", *args, *parameter_overrides(cors_origins), env_file=env_file)
        self.procs.spawn("sam-api", argv, env=engine.docker_env() | AWS_ENV)
        self.procs.wait_http(f"http://127.0.0.1:{port}/sessions/ready-check", "sam local start-api", timeout=120)

    def start_lambda(self, port: int, env_file: Path) -> None:
        """``sam local start-lambda`` on 127.0.0.1:``port`` (process ``sam-lambda``), until it answers."""
        step(f"sam local start-lambda on 127.0.0.1:{port} (warm containers)")
        args = ("--host", "127.0.0.1", "--port", str(port), "--warm-containers", "EAGER")
        argv = self.local("start-lambda", *args, env_file=env_file)
        self.procs.spawn("sam-lambda", argv, env=engine.docker_env() | AWS_ENV)
        self.procs.wait_http(f"http://127.0.0.1:{port}/", "sam local start-lambda", timeout=120)

    def invoke(self, function: str, event: Path, env: Mapping[str, str]) -> tuple[Any, str]:
        """``sam local invoke`` of ``function`` with ``event`` and the environment ``env``: its
        result and the runtime's log (also appended to ``sam-invoke.log``)."""
        env_file = self.procs.state / f"invoke-{function}.json"
        env_file.write_text(json.dumps({"Parameters": dict(env)}))
        out = subprocess.run(
            self.local("invoke", function, "--event", str(event), env_file=env_file),
            cwd=ROOT,
            env=os.environ | engine.docker_env() | AWS_ENV,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        with self.procs.log("sam-invoke").open("a") as log:
            log.write(out.stderr)
        if out.returncode != 0:
            raise StackError(f"sam local invoke {function} failed: {out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def parameter_overrides(cors_origins: Sequence[str]) -> list[str]:
    """The template's CORS allow-list (HttpApi CorsConfiguration, which sam local honours)."""
    if not cors_origins:
        return []
    return ["--parameter-overrides", f"ParameterKey=CorsAllowedOrigins,ParameterValue={','.join(cors_origins)}"]


def invoke_warm(port: int, function: str, event: Path) -> Any:
    """Invoke ``function`` through the warm ``sam local start-lambda`` endpoint on ``port`` (the
    real runtime, faster than a cold ``sam local invoke``)."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "lambda",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - local
        config=Config(read_timeout=150, retries={"max_attempts": 0}),
    )
    out = client.invoke(FunctionName=function, Payload=event.read_bytes())
    if out.get("FunctionError"):
        raise StackError(f"{function} failed: {out['Payload'].read()[:2000]!r}")
    return json.loads(out["Payload"].read())
