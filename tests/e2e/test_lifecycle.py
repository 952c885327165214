"""Process lifecycle: a pipe closed early, SIGTERM at any moment, and an embedded store that never
outlives paperbot (it is paperbot's own child, stopped on exit and told to stop if paperbot is killed)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, Run, base_env, json_lines
from tests.e2e.test_run_once import DAYS, hf_item
from tests.redis_servers import free_port
from tests.standins import HuggingFaceStandIn, StandIn

pytestmark = pytest.mark.e2e


def test_a_reader_that_leaves_early_ends_quietly_and_loses_nothing(real_redis_url: str, tmp_path: Path, paperbot: Run) -> None:
    items = [hf_item(f"2611.{n:05d}", f"Paper {n}") for n in range(1, 41)]
    with StandIn(HuggingFaceStandIn({DAYS[0]: items})) as hf:
        env = base_env(tmp_path, REDIS_URL=real_redis_url, HF_ENDPOINT=hf.url, PAPERBOT_FIRST_RUN_LIMIT="0")  # all 40
        pipeline = subprocess.run(
            f"{sys.executable} -m bot run --once --json | head -1",
            shell=True,
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            executable="/bin/bash",
        )
        first = json_lines(pipeline.stdout)
        assert "Traceback" not in pipeline.stderr
        assert "BrokenPipe" not in pipeline.stderr
        env["PAPERBOT_LOOKBACK_DAYS"] = "0"
        rest: list[str] = []
        for _ in range(3):  # the interrupted run's entries are taken over once idle for a second
            rest += [row["id"] for row in json_lines(paperbot(env, "run", "--once", "--json").stdout)]
            if len(first) + len(rest) >= len(items):
                break
            time.sleep(1.5)  # a dead consumer's entries are claimable once idle for a second
    assert len(first) == 1
    assert sorted(row["id"] for row in first) + sorted(rest) == sorted(set([row["id"] for row in first] + rest))  # no repeats
    assert len(first) + len(rest) == len(items)  # and nothing lost


def test_sigterm_while_waiting_for_redis_exits_promptly_with_status_0(tmp_path: Path) -> None:
    env = base_env(tmp_path, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    process = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # it is now waiting between attempts to reach Redis
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert time.monotonic() - sent < 5
    assert "cannot start: Redis unreachable" in stderr
    assert "paperbot stopped" in stderr
    assert "Traceback" not in stderr


def store_started(data_dir: Path) -> set[int]:
    """Wait (20 s at most) for a starting service's embedded store; its redis-server pids."""
    deadline = time.monotonic() + 20
    while not servers_for(data_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    started = servers_for(data_dir)
    assert started, "the service did not start its store"
    return started


def servers_for(data_dir: Path) -> set[int]:
    """The redis-servers listening on the socket that ``data_dir``'s pointer names (Redis shows its
    socket in its process title)."""
    pointer = data_dir / "redis.socket"
    socket_path = pointer.read_text().strip() if pointer.exists() else ""
    if not socket_path:
        return set()
    pids = set()
    for entry in Path("/proc").iterdir():
        try:
            ours = (
                entry.name.isdigit()
                and (entry / "comm").read_text().strip() == "redis-server"
                and socket_path in (entry / "cmdline").read_bytes().decode(errors="replace")
                and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is gone
            )
        except OSError:
            continue
        if ours:
            pids.add(int(entry.name))
    return pids


def test_the_embedded_store_stops_with_paperbot_even_when_it_is_killed(tmp_path: Path, paperbot: Run) -> None:
    env = base_env(tmp_path)  # no REDIS_URL: the embedded store
    data = tmp_path / "data"
    assert paperbot(env, "run", "--once").returncode == 1  # no source answers; the store came and went
    assert "ready to exit" in (data / "redis.log").read_text()  # the server's own word that it stopped
    assert not (data / "redis.socket").exists()
    assert (data / "appendonly.aof").exists()

    with subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL) as service:
        try:
            started = store_started(data)
            joined = paperbot(env, "ask", "/papers topics")  # a one-off command joins the running store
            assert joined.returncode == 0, joined.stderr
            assert servers_for(data) == started  # and left it running for the service
        finally:
            os.kill(service.pid, signal.SIGKILL)  # also when an assertion failed: never leave it running
            service.wait()
    deadline = time.monotonic() + 10
    while servers_for(data) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert servers_for(data) == set()  # told to stop when its parent died


def test_a_first_run_and_a_wiped_store_post_only_the_newest_ten(tmp_path: Path, paperbot: Run) -> None:
    items = [hf_item(f"2611.{n:05d}", f"Paper {n}") for n in range(1, 31)]
    for n, item in enumerate(items):  # distinct dates, so "the newest" is well defined
        item["paper"]["publishedAt"] = item["publishedAt"] = f"{DAYS[0]}T{n % 24:02d}:{n // 24:02d}:00.000Z"
    with StandIn(HuggingFaceStandIn({DAYS[0]: items})) as hf:
        env = base_env(tmp_path, HF_ENDPOINT=hf.url)  # defaults: the embedded store, first_run_limit 10
        first = json_lines(paperbot(env, "run", "--once", "--json").stdout)
        again = json_lines(paperbot(env, "run", "--once", "--json").stdout)
        for path in (tmp_path / "data").iterdir():  # Redis loses everything (a disk wiped, a flush)
            path.unlink()
        wiped = paperbot(env, "run", "--once", "--json")
    assert len(first) == 10
    assert again == []  # the other 20 were marked seen, not queued for later
    assert len(json_lines(wiped.stdout)) == 10  # no flood after the store forgot
    assert "first run, or the store lost its data" in wiped.stderr


def test_sigterm_exits_within_5_s_even_when_redis_accepts_and_never_answers(tmp_path: Path) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections are accepted by the kernel and then nothing is ever said
    try:
        env = base_env(tmp_path, REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        process = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
        time.sleep(2)  # it is now waiting on a PING that will never be answered (10 s socket timeout)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
        elapsed = time.monotonic() - sent
    finally:
        silent.close()
    assert process.returncode == 0, stderr
    assert elapsed < 5, elapsed
    assert "Traceback" not in stderr


def test_the_store_stops_with_paperbot_even_after_its_data_directory_was_deleted(tmp_path: Path) -> None:
    # Redis 6.2 refuses SIGTERM when its final snapshot fails; the store takes none (append-only file).
    env = base_env(tmp_path)
    data = tmp_path / "data"
    with subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL) as service:
        try:
            store_started(data)
            socket_path = (data / "redis.socket").read_text().strip()
            shutil.rmtree(data)  # a cleaned-up temporary directory, a wiped disk
        finally:
            os.kill(service.pid, signal.SIGKILL)
            service.wait()
    deadline = time.monotonic() + 10
    while _serving(socket_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _serving(socket_path)


def _serving(socket_path: str) -> bool:
    """A live redis-server still shows ``socket_path`` in its process title."""
    for entry in Path("/proc").iterdir():
        try:
            if (
                entry.name.isdigit()
                and (entry / "comm").read_text().strip() == "redis-server"
                and socket_path in (entry / "cmdline").read_bytes().decode(errors="replace")
                and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
            ):
                return True
        except OSError:
            continue
    return False
