"""Slack pacing across processes: three ``paperbot run --role worker`` processes share 50 channels × 20
papers through one Redis, against a stand-in Slack that answers 429 to a second message within a
second in a channel. Every channel's turn is shared through Redis, so the three together must stay at
one message a second per channel: the wall time should stay near the 19 s per-channel bound, with no
429. Default settings; the queue is filled by a ``--role poller`` run.

    .venv/bin/python bench/slack_pace_workers.py [--workers 3] [--channels 50] [--papers 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.test_run_once import DAYS, hf_item
from tests.redis_servers import RedisProcess, embedded_binary
from tests.slack.standin import SlackStandIn
from tests.standins import HuggingFaceStandIn, StandIn

ROOT = Path(__file__).resolve().parents[1]


def main(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="paperbot-bench-"))
    config = data / "paperbot.toml"
    config.write_text("".join(f'[[channels]]\nplatform = "slack"\nid = "C{n:03d}"\n\n' for n in range(args.channels)))
    server = RedisProcess(shutil.which("redis-server") or embedded_binary(), data / "redis").start()
    papers = [hf_item(f"2611.{n:05d}", f"Paced paper {n}") for n in range(args.papers)]
    total = args.channels * args.papers
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with StandIn(HuggingFaceStandIn({DAYS[0]: papers})) as hf, SlackStandIn(channel_interval=1.0) as api:
            env = {
                "PATH": os.environ["PATH"],
                "HOME": str(data),
                "PYTHONPATH": str(ROOT),
                "REDIS_URL": server.url,
                "HF_ENDPOINT": hf.url,
                "SLACK_API_URL": api.api_url,
                "SLACK_BOT_TOKEN": "xoxb-bench",  # posting only: the workers do not listen
                "PAPERBOT_CONFIG": str(config),
                "PAPERBOT_FIRST_RUN_LIMIT": "0",  # every paper to every channel
            }
            command = [sys.executable, "-m", "bot", "run", "--role", "worker"]
            workers = [subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL) for _ in range(args.workers)]
            time.sleep(3)  # started and waiting for work
            poll = [sys.executable, "-m", "bot", "run", "--once", "--role", "poller"]
            subprocess.run(poll, env=env, cwd=ROOT, check=True, capture_output=True)
            started = time.monotonic()
            while len(api.accepted) < total and time.monotonic() - started < 300:
                time.sleep(0.05)
            wall = api.accepted[-1]["_at"] - started if api.accepted else float("nan")
            accepted, limited = len(api.accepted), api.limited
            shown = {(m["channel"], m["blocks"][-1]["elements"][0]["value"]) for m in api.accepted}
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(10)
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    bound = args.papers - 1
    print(f"workers={args.workers} channels={args.channels} papers={args.papers} messages={total}")
    print(f"accepted={accepted} distinct={len(shown)} 429s={limited}")
    print(f"wall from queued to last post {wall:.1f} s; per-channel bound {bound} s; ratio {wall / bound:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--papers", type=int, default=20)
    main(parser.parse_args())
