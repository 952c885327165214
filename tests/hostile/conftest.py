"""The hostile suite: one case per way an input can hurt, through the real entry points.

Each case runs ``python -m bot`` as a subprocess against stand-ins on 127.0.0.1 (or drives the real
bolt app with signed requests) and asserts what a user would: the exit status, that nothing valid
was lost, bounded wall time and peak memory (the child's own VmHWM), a few log lines, and no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, base_env, json_lines, real_redis_url
from tests.slack.conftest import slack, slack_api

__all__ = ["Measured", "base_env", "json_lines", "measured", "real_redis_url", "slack", "slack_api"]  # the last three: fixtures


@dataclass
class Measured:
    """A finished run: its exit status, output, wall time and peak resident memory."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float

    def log_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def assert_calm(self, most_lines: int = 6) -> None:
        """No traceback, and at most ``most_lines`` lines on stderr."""
        assert "Traceback" not in self.stderr, self.stderr[-3000:]
        assert len(self.log_lines()) <= most_lines, self.stderr[-3000:]


def measured(env: dict[str, str], *args: str, timeout: float = 120) -> Measured:
    """Run ``paperbot *args`` and measure it; killed (and failed) after ``timeout`` seconds. The child
    reports its own peak memory at exit (tests/guard/sitecustomize.py)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, tempfile.TemporaryDirectory() as scratch:
        peak_file = Path(scratch) / "peak"
        env = {**env, "PAPERBOT_TEST_PEAK_FILE": str(peak_file)}
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "-m", "bot", *args], env=env, stdout=out, stderr=err, cwd=ROOT)
        deadline = started + timeout
        while True:
            pid, status = os.waitpid(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                os.waitpid(process.pid, 0)
                pytest.fail(f"paperbot {' '.join(args)} still running after {timeout} s")
            time.sleep(0.02)
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        peak_kb = int(peak_file.read_text() or 0) if peak_file.exists() else 0
        return Measured(process.returncode, out.read(), err.read(), seconds, peak_kb / 1024)


def hostile_env(tmp_path: Path, redis_url: str, hf_url: str, **extra: str) -> dict[str, str]:
    """``base_env`` with a real Redis and a stand-in Hugging Face."""
    return base_env(tmp_path, REDIS_URL=redis_url, HF_ENDPOINT=hf_url, **extra)


def ids(stdout: str) -> list[str]:
    """The paper ids ``run --once --json`` delivered, in order."""
    return [row["id"] for row in json_lines(stdout)]
