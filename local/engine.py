"""The project's Docker engine and Lambda base image, from Python: ``local/engine.sh`` and
``local/base-image.sh``, and the docker CLI pointed at that engine (never at any other daemon)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from local.paths import LOCAL, ROOT
from local.processes import StackError


def script(name: str, *args: str, echo: bool = False) -> str:
    """Run ``local/<name>`` with bash; its stdout. ``echo`` repeats its stderr (progress), indented.
    StackError with the stderr's tail when it fails."""
    out = subprocess.run(["bash", str(LOCAL / name), *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if echo and out.stderr:
        sys.stderr.write("".join(f"    {line}\n" for line in out.stderr.splitlines()))
    if out.returncode != 0:
        raise StackError(f"local/{name} {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return out.stdout


def start() -> None:
    """Start the engine, or reuse the running one."""
    script("engine.sh", "start", echo=True)


def build_base_image() -> None:
    """The Lambda base image (python3.13), built once and reused."""
    script("base-image.sh", echo=True)


def stop() -> None:
    """Stop the engine (by the PID in its pidfile); nothing when it is not running."""
    subprocess.run(["bash", str(LOCAL / "engine.sh"), "stop"], check=False)


def running() -> bool:
    return (
        subprocess.run(["bash", str(LOCAL / "engine.sh"), "status"], capture_output=True, check=False).returncode == 0
    )


def bridge_ip() -> str:
    """The host's IPv4 address on the engine's bridge: where containers reach host services."""
    return script("engine.sh", "bridge-ip").strip()


def docker_env() -> dict[str, str]:
    """``DOCKER_HOST`` of the engine, for the docker CLI and the SAM CLI."""
    line = script("engine.sh", "env").strip()  # export DOCKER_HOST=unix://...
    return {"DOCKER_HOST": line.split("=", 1)[1]}


def docker(*args: str, check: bool = True, timeout: float = 120, stderr: bool = False) -> str:
    """``docker ARGS`` on the engine; its stdout (and stderr with ``stderr``). StackError when it
    fails and ``check``."""
    out = subprocess.run(
        ["docker", *args],
        env=os.environ | docker_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if check and out.returncode != 0:
        raise StackError(f"docker {' '.join(args[:2])} failed: {out.stderr[-1500:]}")
    return out.stdout + (out.stderr if stderr else "")


def container_ids(all_: bool = False) -> list[str]:
    """Ids of the engine's running containers (``all_``: exited ones too)."""
    return docker("ps", "-aq" if all_ else "-q", check=False).split()


def container_env(cid: str) -> dict[str, str] | None:
    """The environment container ``cid`` was started with; None when it is gone meanwhile."""
    raw = docker("inspect", "--format", "{{json .Config.Env}}", cid, check=False)
    if not raw.strip():
        return None
    return dict(item.split("=", 1) for item in json.loads(raw))


def remove_containers_mounting(directory: Path) -> int:
    """Remove every container (running or exited) that mounts ``directory`` or a path below it;
    how many. `sam local` leaves its warm containers behind when it is stopped."""
    if not running():
        return 0
    ids = container_ids(all_=True)
    if not ids:
        return 0
    mounts = docker("inspect", "--format", "{{.Id}}{{range .Mounts}} {{.Source}}{{end}}", *ids, check=False)
    ours = [
        line.split()[0]
        for line in mounts.splitlines()
        if any(src.startswith(str(directory)) for src in line.split()[1:])
    ]
    if ours:
        docker("rm", "-f", *ours, check=False)
    return len(ours)
