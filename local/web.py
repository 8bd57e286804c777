"""The demo page (``web/``) of a local stack: built with Vite into the stack's state directory, next
to a ``config.json`` naming the broker and the Avaturn API host the web SDK must use, and served
by ``vite preview`` on 127.0.0.1 (process ``web``)."""

from __future__ import annotations

import json

from local.paths import ROOT, VITE, WEB
from local.processes import Processes, StackError, listening, step


def serve(procs: Processes, port: int, broker_url: str, avaturn_api_host: str) -> str:
    """Build the page into ``<state>/web`` and serve it on 127.0.0.1:``port``, until it answers;
    its URL. StackError when the page's packages are missing or another process holds the port."""
    url = f"http://127.0.0.1:{port}"
    if not VITE.exists():
        raise StackError("the demo page's packages are missing; run `make setup` (npm ci in web/)")
    if not procs.alive("web") and listening("127.0.0.1", port):
        raise StackError(f"port {port} is taken: choose another with --web-port")
    out = procs.state / "web"
    step(f"demo page: vite build into {out.relative_to(ROOT)}")
    procs.run(
        ["node", str(VITE), "build", "--outDir", str(out), "--emptyOutDir", "--logLevel", "warn"],
        log="web-build.log",
        cwd=WEB,
    )
    config = {"brokerUrl": broker_url, "avaturnApiHost": avaturn_api_host}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    step(f"demo page: vite preview on {url}")
    argv = ["node", str(VITE), "preview", "--host", "127.0.0.1", "--port", str(port), "--strictPort"]
    procs.spawn("web", [*argv, "--outDir", str(out)], cwd=WEB)
    procs.wait_http(f"{url}/config.json", "the demo page server")
    return url
