"""Where things are, and the fixed names and values of every local stack.

Paths are derived from this file's location, so the repository can live anywhere. The stack's
own state (PID files, logs, build, env files) lives under ``.local/stack-<name>/`` (gitignored).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / "local"
STATE = ROOT / ".local"  # every stack's state directory is below it
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
SHARED = ROOT / "functions" / "shared"  # the layer's sources (the `broker` package)
SAM = ROOT / ".venv-sam" / "bin" / "sam"
PYTHON = ROOT / ".venv" / "bin" / "python"
MOTO = (str(PYTHON), str(LOCAL / "moto_faults.py"))  # moto_server with DynamoDB faults set over HTTP
SIMULATORS = LOCAL / "simulators"
WEB = ROOT / "web"
VITE = WEB / "node_modules" / "vite" / "bin" / "vite.js"
BASE_IMAGE = "public.ecr.aws/lambda/python:3.13-x86_64"  # built locally by local/base-image.sh

AVATURN_PUBLIC_API = "https://api.avaturn.live"
TABLE, SECRET = "avaturn-sessions-local", "avaturn-session-broker-local"
PROFILES = "/avaturn-session-broker-local/profiles"  # the SSM parameter of the profiles document
PROFILES_EXAMPLE = ROOT / "profiles.example.json"  # what the local stack seeds it with
# The keys the simulators accept (and moto's secret holds) unless a stack plants others.
SIM_KEYS = {
    "avaturn_api_key": "sim-avaturn-key",
    "openai_api_key": "sim-openai-key",
    "cartesia_api_key": "sim-cartesia-key",
}
# Secret field -> environment variable holding a real key (then the real service is called).
REAL_KEY_VARS = {
    "avaturn_api_key": "AVATURN_API_KEY",
    "openai_api_key": "OPENAI_API_KEY",
    "cartesia_api_key": "CARTESIA_API_KEY",
}
# Credentials and region for moto and `sam local` (never real ones).
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def state_dir(name: str) -> Path:
    """The state directory of the stack called ``name``."""
    return STATE / f"stack-{name}"
