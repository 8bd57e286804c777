"""The processes of one local stack, by PID: spawn one with its log, record its PID, wait until it
answers HTTP, run a logged command, and stop exactly the processes it recorded (SIGTERM, then
SIGKILL what lingers). Everything lives in the stack's state directory: ``<name>.pid`` and
``<name>.log`` per process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from local.paths import AWS_ENV, ROOT


class StackError(RuntimeError):
    """A step of the local stack failed; the message says which, with the tail of its log."""


def step(message: str) -> None:
    """One progress line on stderr (stdout stays machine-readable)."""
    print(f"==> {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Processes:
    """The processes a stack started, recorded by name in its state directory."""

    state: Path

    def pidfile(self, name: str) -> Path:
        return self.state / f"{name}.pid"

    def log(self, name: str) -> Path:
        return self.state / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """The recorded PID of process ``name``, alive or not; None when none is recorded."""
        try:
            return int(self.pidfile(name).read_text())
        except (OSError, ValueError):
            return None

    def alive(self, name: str) -> bool:
        pid = self.pid(name)
        return pid is not None and pid_exists(pid)

    def spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None, cwd: Path = ROOT) -> None:
        """Start ``argv`` in a session of its own, output appended to ``<name>.log``, and record its
        PID; nothing when a process of that name is already alive. The environment is ours plus
        the local AWS credentials plus ``env``."""
        if self.alive(name):
            return
        log = self.log(name).open("ab")
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=os.environ | AWS_ENV | dict(env or {}),
            start_new_session=True,
        )
        self.pidfile(name).write_text(str(proc.pid))

    def stop(self, names: Iterable[str], grace: float = 20) -> None:
        """SIGTERM to each recorded process of ``names`` (by PID), wait up to ``grace`` seconds in
        all, SIGKILL what lingers; the PID files go."""
        found = {name: self.pid(name) for name in names}
        pids = {name: pid for name, pid in found.items() if pid is not None}
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name, pid in pids.items():
            while pid_exists(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_exists(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.pidfile(name).unlink(missing_ok=True)
            step(f"stopped {name} (pid {pid})")

    def wait_http(self, url: str, what: str, timeout: float = 30) -> None:
        """Until ``url`` answers at all (any HTTP status); StackError after ``timeout`` seconds."""
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

    def run(self, argv: list[str], log: str, cwd: Path = ROOT) -> None:
        """Run ``argv`` to completion, output appended to the state directory's file ``log``;
        StackError with the log's tail when it fails."""
        with (self.state / log).open("ab") as handle:
            code = subprocess.call(argv, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, env=os.environ | AWS_ENV)
        if code != 0:
            tail = (self.state / log).read_text(errors="replace")[-3000:]
            raise StackError(f"{' '.join(Path(a).name for a in argv[:2])} failed:\n{tail}")

    def logs(self) -> str:
        """Every log of the stack, concatenated (sorted by file name)."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.state.glob("*.log")))


def pid_exists(pid: int) -> bool:
    """Whether process ``pid`` exists; a zombie child of ours counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def listening(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False
