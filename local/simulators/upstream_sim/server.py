"""Runs the three upstreams and the control API as four uvicorn servers on one event loop."""

import asyncio
import contextlib
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from upstream_sim.avaturn_app import create_avaturn_app
from upstream_sim.cartesia_app import create_cartesia_app
from upstream_sim.config import UPSTREAMS, SimConfig
from upstream_sim.control_app import create_control_app
from upstream_sim.layers import build_stack, make_protocol_class, sdk_cors
from upstream_sim.openai_app import create_openai_app
from upstream_sim.state import SimState

LISTENERS: tuple[str, ...] = (*UPSTREAMS, "control")
DEFAULT_PORTS: dict[str, int] = {"avaturn": 4010, "openai": 4011, "cartesia": 4012, "control": 4013}
_URL_SUFFIX: dict[str, str] = {"avaturn": "", "openai": "/v1", "cartesia": "", "control": "/_control"}


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the runner (several servers share a loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _check_host(host: str) -> None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return
    if address.is_unspecified:
        raise ValueError(f"refusing to bind the wildcard address {host}; give 127.0.0.1 or a specific address")


def bind_socket(host: str, port: int) -> socket.socket:
    _check_host(host)
    family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
    _check_host(str(address[0]))
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _url(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


class Simulator:
    """The whole simulator. Use :meth:`serve` on a running loop (the CLI does), or
    :meth:`start_in_thread` / :meth:`stop_thread` (or ``with Simulator(...)``) from tests.

    Port 0 picks a free port; with several hosts every host gets the same port.
    The control API listens on the primary host only.
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        host: str = "127.0.0.1",
        ports: Mapping[str, int] | None = None,
        also_hosts: Sequence[str] = (),
        log_level: str = "warning",
        graceful_timeout: int = 1,
    ) -> None:
        self.config = config or SimConfig()
        self.host = host
        self.also_hosts = [h for h in also_hosts if h != host]
        self.ports: dict[str, int] = {**DEFAULT_PORTS, **(ports or {})}
        self.log_level = log_level
        self.graceful_timeout = graceful_timeout
        self.state = SimState(self.config)
        self.info: dict[str, Any] = {}
        self._sockets: dict[str, list[socket.socket]] = {}
        self._hosts: dict[str, list[str]] = {}
        self._servers: list[_Server] = []
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        self.ready = threading.Event()

    # ---- binding ---------------------------------------------------------------------------

    def bind(self) -> None:
        """Open the listening sockets now (errors such as a port in use surface here)."""
        if self._sockets:
            return
        try:
            for name in LISTENERS:
                hosts = [self.host] if name == "control" else [self.host, *self.also_hosts]
                first = bind_socket(hosts[0], self.ports[name])
                self._sockets[name] = [first]
                port = int(first.getsockname()[1])
                self.ports[name] = port
                for extra in hosts[1:]:
                    self._sockets[name].append(bind_socket(extra, port))
                self._hosts[name] = hosts
        except BaseException:
            self.close_sockets()
            raise
        self.info.update({"urls": self.urls, "all_urls": self.all_urls})

    def close_sockets(self) -> None:
        for socks in self._sockets.values():
            for sock in socks:
                sock.close()
        self._sockets.clear()

    @property
    def urls(self) -> dict[str, str]:
        """Base URL of each listener on the primary host (OpenAI's includes ``/v1``)."""
        return {name: _url(self.host, self.ports[name]) + _URL_SUFFIX[name] for name in LISTENERS}

    @property
    def all_urls(self) -> dict[str, list[str]]:
        return {
            name: [_url(h, self.ports[name]) + _URL_SUFFIX[name] for h in self._hosts.get(name, [self.host])]
            for name in LISTENERS
        }

    # ---- apps ------------------------------------------------------------------------------

    def _apps(self) -> dict[str, ASGIApp]:
        state, config = self.state, self.config
        return {
            "avaturn": build_stack(
                "avaturn",
                create_avaturn_app(state),
                state,
                wrap_sdk=lambda app: sdk_cors(app, config.cors_origins, config.cors_origin_regex),
            ),
            "openai": build_stack("openai", create_openai_app(state), state),
            "cartesia": build_stack("cartesia", create_cartesia_app(state), state),
            "control": create_control_app(state, self.info),
        }

    # ---- running ---------------------------------------------------------------------------

    async def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        self.bind()
        self._loop = asyncio.get_running_loop()
        apps = self._apps()
        self._servers = []
        for name in LISTENERS:
            uv_config = uvicorn.Config(
                apps[name],
                http=make_protocol_class(name, self.state),
                ws="none",
                lifespan="off",
                interface="asgi3",
                log_config=None,
                log_level=self.log_level,
                access_log=self.config.access_log,
                proxy_headers=False,
                timeout_keep_alive=self.config.keep_alive_timeout,
                timeout_graceful_shutdown=self.graceful_timeout,
            )
            self._servers.append(_Server(uv_config))
        tasks = [
            asyncio.create_task(server.serve(sockets=self._sockets[name]), name=f"upstream_sim:{name}")
            for name, server in zip(LISTENERS, self._servers, strict=True)
        ]
        try:
            while not all(server.started for server in self._servers):
                failed = [task for task in tasks if task.done()]
                if failed:
                    self.request_stop()
                    await asyncio.gather(*tasks)
                    raise RuntimeError("a listener failed to start")
                await asyncio.sleep(0.005)
            if self._stopping:
                self.request_stop()
            self.ready.set()
            if on_ready is not None:
                on_ready()
            await asyncio.gather(*tasks)
        finally:
            self._sockets.clear()
            self.ready.clear()

    def request_stop(self) -> None:
        """Begin a graceful shutdown; call on the simulator's loop (signal handlers do)."""
        self._stopping = True
        for server in self._servers:
            server.should_exit = True
        self.state.interrupt_sleepers()

    # ---- thread mode (tests) ---------------------------------------------------------------

    def start_in_thread(self, timeout: float = 10.0) -> "Simulator":
        self.bind()

        def run() -> None:
            try:
                asyncio.run(self.serve())
            except BaseException as exc:  # noqa: BLE001 - handed to the thread that waits for readiness
                self._thread_error = exc
                self.ready.set()

        self._thread = threading.Thread(target=run, name="upstream_sim", daemon=True)
        self._thread.start()
        if not self.ready.wait(timeout):
            raise RuntimeError("simulator did not become ready")
        if self._thread_error is not None:
            raise RuntimeError("simulator failed to start") from self._thread_error
        return self

    def stop_thread(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(self.request_stop)
            thread.join(timeout)
        self._thread = None

    def __enter__(self) -> "Simulator":
        return self.start_in_thread()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_thread()
