"""Start-up benchmark: ``paperbot run --once`` with nothing new, against a naive peer script.

The peer is what a lab writes in an afternoon: fetch today's Daily Papers and the two days before
(httpx), ask Redis about each paper (one SISMEMBER each), print the new ones, exit. paperbot does
more on the same run (settings, a poll lock, health records, the first-run check, the delivery
pass), so this measures what that costs a cron-style run. Same stand-in Hugging Face (50 papers a
day on 127.0.0.1), same Redis server, everything already seen; medians of ``--runs`` runs each, wall
time and peak RSS of the process.

    .venv/bin/python bench/startup.py [--runs 7] [--papers 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.test_run_once import DAYS, hf_item
from tests.redis_servers import RedisProcess, embedded_binary
from tests.standins import HuggingFaceStandIn, StandIn

ROOT = Path(__file__).resolve().parents[1]

PEER = textwrap.dedent(
    """
    import os, sys, httpx, redis
    from datetime import date, timedelta
    r = redis.Redis.from_url(os.environ["REDIS_URL"])
    with httpx.Client(base_url=os.environ["HF_ENDPOINT"], timeout=20) as http:
        for back in range(3):
            day = (date.today() - timedelta(days=back)).isoformat()
            for item in http.get("/api/daily_papers", params={"date": day, "limit": 100}).json():
                if not r.sismember("peer:seen", item["paper"]["id"]):
                    r.sadd("peer:seen", item["paper"]["id"])
                    print(item["title"])
    """
)


def measure(command: list[str], env: dict[str, str], peak_file: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB, the process's own VmHWM as it exits: a child's ru_maxrss would
    include this bench's own size, inherited at fork) of one run of ``command``."""
    started = time.perf_counter()
    result = subprocess.run(command, env=env | {"PAPERBOT_TEST_PEAK_FILE": str(peak_file)}, cwd=ROOT, capture_output=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{command} exited {result.returncode}: {result.stderr.decode()[-500:]}")
    return wall, int(peak_file.read_text()) / 1024


def main(args: argparse.Namespace) -> None:
    days = {day: [hf_item(f"26{11 + i:02d}.{n:05d}", f"Paper {n}") for n in range(args.papers)] for i, day in enumerate(DAYS)}
    data = Path(tempfile.mkdtemp(prefix="paperbot-bench-"))
    server = RedisProcess(shutil.which("redis-server") or embedded_binary(), data / "redis").start()
    try:
        with StandIn(HuggingFaceStandIn(days)) as hf:
            # The tests' guard (on PYTHONPATH) records each process's peak memory as it exits.
            guard = os.pathsep.join([str(ROOT / "tests" / "guard"), str(ROOT)])
            base = {"PATH": os.environ["PATH"], "HOME": str(data), "HF_ENDPOINT": hf.url, "PYTHONPATH": guard}
            with_redis = base | {"REDIS_URL": server.url, "PAPERBOT_KEY_PREFIX": f"bench{uuid.uuid4().hex[:6]}:"}
            embedded = base | {"PAPERBOT_DATA_DIR": str(data / "embedded")}
            runs = {
                "paperbot run --once (REDIS_URL)": ([sys.executable, "-m", "bot", "run", "--once"], with_redis),
                "paperbot run --once (embedded store)": ([sys.executable, "-m", "bot", "run", "--once"], embedded),
                "peer script (httpx + SISMEMBER loop)": ([sys.executable, "-c", PEER], with_redis),
            }
            peak = data / "peak"
            for command, env in runs.values():
                measure(command, env, peak)  # the first run sees everything: from now on nothing is new
            results = {}
            for name, (command, env) in runs.items():
                samples = [measure(command, env, peak) for _ in range(args.runs)]
                results[name] = (statistics.median(w for w, _ in samples), statistics.median(r for _, r in samples))
                print(f"  {name}: done", file=sys.stderr)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    peer_wall, peer_rss = results["peer script (httpx + SISMEMBER loop)"]
    print(f"{args.papers} papers a day x 3 days, all seen; medians of {args.runs} runs")
    for name, (wall, rss) in results.items():
        print(
            f"{name:<40} wall {wall:6.3f} s ({wall / peer_wall:4.2f}x the peer)  peak RSS {rss:5.1f} MB ({rss / peer_rss:4.2f}x)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--papers", type=int, default=50)
    main(parser.parse_args())
