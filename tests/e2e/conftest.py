"""Running paperbot as a real subprocess, confined to 127.0.0.1 by tests/guard/sitecustomize.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.redis_servers import system_binary

ROOT = Path(__file__).resolve().parents[2]
GUARD = ROOT / "tests" / "guard"


@pytest.fixture
def real_redis_url(request: pytest.FixtureRequest) -> str:
    """Debian's redis-server where present (always in CI), else the embedded binary."""
    if os.environ.get("TEST_REDIS_URL") or system_binary():
        return request.getfixturevalue("system_redis_url")
    return request.getfixturevalue("embedded_redis").url


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no inherited tokens, quick retries, the network guard on."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": os.pathsep.join([str(GUARD), str(ROOT)]),
        "PAPERBOT_DATA_DIR": str(tmp_path / "data"),
        "PAPERBOT_KEY_PREFIX": f"e2e:{uuid.uuid4().hex}:",
        "PAPERBOT_HTTP_BACKOFF": "0.01",
        "PAPERBOT_HTTP_RETRIES": "2",
        "PAPERBOT_HTTP_TIMEOUT": "5",
        "PAPERBOT_ARXIV_MIN_INTERVAL": "0",
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "ARXIV_API_URL": "http://127.0.0.1:9/api/query",
    }
    env.update(extra)
    return env


def env_with_slack(tmp_path: Path, redis_url: str, hf_url: str, slack_api_url: str, config: Path, **extra: str) -> dict[str, str]:
    """``base_env`` for paperbot posting to a stand-in Slack, reading a stand-in HF, on a real Redis."""
    return base_env(
        tmp_path,
        REDIS_URL=redis_url,
        HF_ENDPOINT=hf_url,
        SLACK_API_URL=slack_api_url,
        PAPERBOT_CONFIG=str(config),
        SLACK_BOT_TOKEN="xoxb-e2e-token",
        **{"SLACK_SIGNING_SECRET": "s", **extra},
    )


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def paperbot() -> Run:
    """``paperbot(env, *args)`` runs ``python -m bot`` and returns the finished process."""

    def run(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
        )

    return run


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@contextmanager
def serving(env: dict[str, str], *args: str, secrets: tuple[str, ...] = ()) -> Iterator[subprocess.Popen[str]]:
    """``paperbot run`` (plus ``args``) for the block; then SIGTERM, and it must exit 0 with no traceback
    and none of ``secrets`` in its stderr (printed, so a failing test shows it)."""
    command = [sys.executable, "-m", "bot", "run", *args]
    service = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield service
    finally:
        service.send_signal(signal.SIGTERM)
        _, stderr = service.communicate(timeout=20)
        print(stderr[-3000:])
    assert service.returncode == 0, stderr
    assert "Traceback" not in stderr
    for secret in secrets:
        assert secret not in stderr


def service(env: dict[str, str]) -> subprocess.Popen[str]:
    """``paperbot run --json`` started as the service, its cards on a stdout pipe (one JSON line each)."""
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--json"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
