"""Network guard for paperbot subprocesses started by the tests: only loopback and Unix sockets.

The e2e tests put this directory first on PYTHONPATH, so Python imports it at start-up. A
connection or name lookup that would leave 127.0.0.1 raises at once, before any packet is sent.
"""

import socket

_LOCAL_NAMES = {"127.0.0.1", "::1", "localhost"}
_connect, _getaddrinfo = socket.socket.connect, socket.getaddrinfo


class NetworkGuardError(OSError):
    """A test subprocess tried to reach something other than this machine's loopback."""


def allowed(address: object) -> bool:
    """True for Unix socket paths and loopback (host, port) tuples."""
    if isinstance(address, str | bytes):
        return True
    host = address[0] if isinstance(address, tuple) and address else address
    return isinstance(host, str) and (host in _LOCAL_NAMES or host.startswith("127."))


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not allowed(address):
        raise NetworkGuardError(f"network guard: connection to {address!r} refused; tests stay on 127.0.0.1")
    return _connect(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if host is not None and not allowed((host if isinstance(host, str) else host.decode(), 0)):
        raise NetworkGuardError(f"network guard: lookup of {host!r} refused; tests stay on 127.0.0.1")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo


def _report_peak_memory() -> None:
    """Write this process's own peak resident memory (VmHWM, kB) where the hostile tests asked.
    (``wait4``'s ``ru_maxrss`` would include the parent's memory at fork: Linux keeps it across exec.)"""
    import os

    target = os.environ.get("PAPERBOT_TEST_PEAK_FILE")
    if not target:
        return
    with open("/proc/self/status", encoding="ascii") as status:
        peak = next((line.split()[1] for line in status if line.startswith("VmHWM:")), "0")
    with open(target, "w", encoding="ascii") as out:
        out.write(peak)


__import__("atexit").register(_report_peak_memory)
