"""The leak check's accounting: the session's descendants, orphans included, and nobody else's processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.processes import descendants


def test_a_grandchild_whose_parent_ended_is_still_counted_as_ours() -> None:
    # sh starts a sleeper in the background and exits at once: the sleeper is an orphan, adopted by the session.
    out = subprocess.run(["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True, check=True)
    orphan = int(out.stdout)
    try:
        assert descendants().get(orphan) == "sleep"
    finally:
        os.kill(orphan, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while orphan in descendants() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert orphan not in descendants()


def test_processes_outside_the_session_are_never_counted() -> None:
    mine = descendants()
    assert os.getpid() not in mine
    assert os.getppid() not in mine  # whatever started the tests
    assert 1 not in mine
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in descendants()
        assert descendants(child.pid) == {}
    finally:
        child.kill()
        child.wait()
