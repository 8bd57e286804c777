"""Runs inside the Lambda image (python3.13, /var/task = one built function, /opt = the built
layer, read-only as in Lambda). Standard library only. Prints one JSON object.

    python3.13 probe.py REPS [EVENT_JSON]

- ``app_import_s``: a fresh interpreter's ``import app`` (the handler module), REPS times;
- ``deps_import_s``: a fresh interpreter importing only the third-party modules that ``import app``
  pulls in (same order), REPS times: what the function's init costs before its own code runs;
- ``by_package_ms``: ``-X importtime`` self time of ``import app`` summed per top-level package;
- ``openai_at_init`` / ``openai_after_invoke``: whether ``openai`` is in ``sys.modules`` after the
  import, and after one real invocation of the handler with EVENT_JSON (network: the simulators);
- ``bytecode``: from ``python -v`` over the import and that invocation, how many modules of the
  function (/var/task), the layer (/opt) and the rest came from .pyc files, and which modules
  were compiled from source instead (none of the build's may be: Lambda's /opt and /var/task are
  read-only, so such a module is compiled again by every cold start).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

PY = sys.executable
OWN = {"app", "broker"}

LIST_IMPORTS = """
import json, sys
before = set(sys.modules)
import app
new = [m for m in sys.modules if m not in before]  # in the order they started importing
third_party = [
    name for name in new
    if not ((top := name.split(".")[0]) in sys.stdlib_module_names or top.startswith("_") or top in {"app", "broker"})
]
print(json.dumps({"third_party": third_party, "modules": len(sys.modules), "openai": "openai" in sys.modules}))
"""

TIME_IMPORT = """
import importlib, time
t = time.perf_counter()
for name in {names!r}:
    try:
        importlib.import_module(name)
    except Exception:
        pass  # a module only its parent can import; the parent brought it in
print(time.perf_counter() - t)
"""

INVOKE = """
import json, sys, time
import app

class Context:
    function_name = "probe"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:probe"
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = log_stream_name = "probe"
    _end = time.monotonic() + 20
    def get_remaining_time_in_millis(self):
        return int((self._end - time.monotonic()) * 1000)

with open(sys.argv[1]) as f:
    event = json.load(f)
result = app.lambda_handler(event, Context())
status = result.get("statusCode") if isinstance(result, dict) else None
print(json.dumps({"openai": "openai" in sys.modules, "status": status, "result_keys": sorted(result)[:8]}))
"""

_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")
# `python -v`: "# code object from '<...>.pyc'" for a cached module, "# code object from <...>.py"
# for one compiled from its source
_CODE_FROM = re.compile(r"^# code object from '?(.+?)'?$")
PLACES = {"/var/task/": "function", "/opt/": "layer"}


def child(code: str, *args: str, importtime: bool = False, verbose: bool = False) -> subprocess.CompletedProcess[str]:
    flags = (["-X", "importtime"] if importtime else []) + (["-v"] if verbose else [])
    return subprocess.run([PY, *flags, "-c", code, *args], capture_output=True, text=True, check=True, timeout=120)


def bytecode(verbose_stderr: str) -> dict[str, object]:
    """Modules loaded from .pyc per place (function, layer, other), and those compiled from source."""
    from_pyc: dict[str, int] = {}
    from_source: dict[str, list[str]] = {}
    for line in verbose_stderr.splitlines():
        match = _CODE_FROM.match(line)
        if not match:
            continue
        path = match.group(1)
        place = next((name for root, name in PLACES.items() if path.startswith(root)), "other")
        if path.endswith(".pyc"):
            from_pyc[place] = from_pyc.get(place, 0) + 1
        else:
            from_source.setdefault(place, []).append(path)
    return {"from_pyc": from_pyc, "from_source": from_source}


def last_json(out: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    reps = int(sys.argv[1])
    event = sys.argv[2] if len(sys.argv) > 2 else None
    listing = child(LIST_IMPORTS, importtime=True)
    info = last_json(listing.stdout)
    by_package: dict[str, float] = {}
    for line in listing.stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            top = match.group(4).split(".")[0]
            group = "stdlib" if top in sys.stdlib_module_names or top.startswith("_") else top
            by_package[group] = by_package.get(group, 0.0) + int(match.group(1)) / 1000
    third_party = [str(name) for name in info["third_party"]]  # type: ignore[attr-defined]
    deps_code = TIME_IMPORT.format(names=third_party)
    app_code = TIME_IMPORT.format(names=["app"])
    deps = [float(child(deps_code).stdout) for _ in range(reps)]
    apps = [float(child(app_code).stdout) for _ in range(reps)]
    out: dict[str, object] = {
        "python": sys.version.split()[0],
        "third_party_packages": sorted({name.split(".")[0] for name in third_party}),
        "third_party_modules": len(third_party),
        "modules_after_import": info["modules"],
        "openai_at_init": info["openai"],
        "deps_import_s": deps,
        "app_import_s": apps,
        "by_package_ms": dict(sorted(by_package.items(), key=lambda kv: -kv[1])),
    }
    if event:
        run = child(INVOKE, event, verbose=True)
        invoked = last_json(run.stdout)
        out["openai_after_invoke"] = invoked["openai"]
        out["invoke_status"] = invoked["status"]
        out["bytecode"] = bytecode(run.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
