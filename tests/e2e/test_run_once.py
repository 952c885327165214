"""``paperbot run --once`` end to end: stand-in HF and arXiv on 127.0.0.1, a real Redis, injected faults."""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import fixture_json
from tests.e2e.conftest import GUARD, ROOT, Run, base_env, json_lines
from tests.redis_servers import free_port
from tests.standins import ArxivEntry, ArxivStandIn, HuggingFaceStandIn, StandIn, text_response

pytestmark = pytest.mark.e2e

TODAY = datetime.now(UTC).date()
DAYS = [(TODAY - timedelta(days=n)).isoformat() for n in range(3)]


def hf_item(pid: str, title: str) -> dict:
    item = copy.deepcopy(fixture_json("hf_daily_full.json")[0])
    item["paper"]["id"] = pid
    item["paper"]["title"] = item["title"] = title
    return item


def arxiv_entry(pid: str, title: str, version: int = 1) -> ArxivEntry:
    published = datetime.combine(TODAY - timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=12)
    return ArxivEntry(pid, title, published, version=version)


@pytest.fixture
def world(real_redis_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    hf = HuggingFaceStandIn(
        {
            DAYS[0]: [hf_item("2611.00001", "Alpha"), hf_item("2611.00002", "Beta")],
            DAYS[1]: [hf_item("2611.00002", "Beta"), hf_item("2611.00003", "Gamma")],
            DAYS[2]: [],
        }
    )
    arxiv = ArxivStandIn([arxiv_entry("2611.00001", "Alpha", version=2), arxiv_entry("2611.00004", "Delta")])
    with StandIn(hf) as hf_server, StandIn(arxiv) as arxiv_server:
        env = base_env(
            tmp_path,
            REDIS_URL=real_redis_url,
            HF_ENDPOINT=hf_server.url,
            ARXIV_API_URL=f"{arxiv_server.url}/api/query",
            PAPERBOT_ARXIV_CATEGORIES="cs.CL",
        )
        yield env, hf, hf_server, arxiv, arxiv_server


def test_every_paper_exactly_once_and_faults_lose_and_duplicate_nothing(world, paperbot: Run) -> None:  # type: ignore[no-untyped-def]
    env, hf, hf_server, arxiv, arxiv_server = world
    printed: list[dict] = []

    def once(expect_exit: int = 0) -> list[dict]:
        result = paperbot(env, "run", "--once", "--json")
        assert result.returncode == expect_exit, result.stderr
        assert "Traceback" not in result.stderr
        lines = json_lines(result.stdout)
        printed.extend(lines)
        return lines

    first = once()
    assert sorted(p["id"] for p in first) == ["2611.00001", "2611.00002", "2611.00003", "2611.00004"]
    alpha = next(p for p in first if p["id"] == "2611.00001")
    assert alpha["sources"] == ["arxiv", "huggingface"]
    assert alpha["destination"] == "console:terminal"
    assert alpha["url"] == "https://huggingface.co/papers/2611.00001"
    assert alpha["tldr"].startswith("Large Multimodal Models demonstrate")
    assert alpha["authors"][0] == "Marco Garosi"
    assert once() == []  # a second run prints nothing new

    # HF's API and page both answer 500 for today; arXiv is rate limited once. Today's new paper waits.
    hf.days[DAYS[0]].append(hf_item("2611.00005", "Epsilon"))
    arxiv.entries.append(arxiv_entry("2611.00006", "Zeta"))
    hf_server.fail("/api/daily_papers", *[text_response("oops", 500)] * 3)
    hf_server.fail(f"/papers/date/{DAYS[0]}", *[text_response("oops", 500)] * 3)
    arxiv_server.fail("/api/query", text_response("Rate exceeded.", 429, headers={"Retry-After": "0"}))
    assert [p["id"] for p in once()] == ["2611.00006"]
    assert [p["id"] for p in once()] == ["2611.00005"]

    # Garbage: HF's API answers HTML (the page fallback saves the day); arXiv answers garbage (it waits).
    hf.days[DAYS[0]].append(hf_item("2611.00007", "Eta"))
    arxiv.entries.append(arxiv_entry("2611.00008", "Theta"))
    hf_server.fail("/api/daily_papers", text_response("<html>maintenance</html>", 200, "text/html"))
    arxiv_server.fail("/api/query", text_response("<html>maintenance</html>", 200, "text/html"))
    assert [p["id"] for p in once()] == ["2611.00007"]
    assert [p["id"] for p in once()] == ["2611.00008"]

    # Everything down: exit 1 with one line, nothing marked seen; the next run delivers.
    hf.days[DAYS[0]].append(hf_item("2611.00009", "Iota"))
    down = dict(env, HF_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    arxiv_server.fail("/api/query", *[text_response("oops", 503)] * 3)
    result = paperbot(down, "run", "--once", "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("paperbot:")]
    assert len(error_lines) == 1
    assert "every source failed" in error_lines[0]
    assert "Traceback" not in result.stderr
    assert [p["id"] for p in once()] == ["2611.00009"]

    counts = Counter(p["id"] for p in printed)
    assert all(n == 1 for n in counts.values()), counts
    assert len(counts) == 9


def test_human_output_is_readable_and_feed_text_is_never_markup(tmp_path: Path, paperbot: Run) -> None:
    hostile = hf_item("2611.00042", "[bold red]Pwned[/] :smile: \x1b[2J<!channel> @everyone")
    with StandIn(HuggingFaceStandIn({DAYS[0]: [hostile]})) as server:
        result = paperbot(base_env(tmp_path, HF_ENDPOINT=server.url), "run", "--once")
    assert result.returncode == 0, result.stderr
    assert "[bold red]Pwned[/] :smile:" in result.stdout  # printed literally: not styled, no emoji
    assert "\x1b[2J" not in result.stdout
    assert "TL;DR Large Multimodal Models demonstrate" in result.stdout
    assert "Marco Garosi, Matteo Farina, Alessandro Conti et al. (5 authors)" in result.stdout
    assert "https://github.com/marco-garosi/CIRCLE" in result.stdout


def test_the_embedded_store_remembers_between_runs(tmp_path: Path, paperbot: Run) -> None:
    with StandIn(HuggingFaceStandIn({DAYS[0]: [hf_item("2611.00011", "Kappa")]})) as server:
        env = base_env(tmp_path, HF_ENDPOINT=server.url)
        first = paperbot(env, "run", "--once", "--json")
        second = paperbot(env, "run", "--once", "--json")
    assert first.returncode == 0, first.stderr
    assert [p["id"] for p in json_lines(first.stdout)] == ["2611.00011"]
    assert second.returncode == 0, second.stderr
    assert second.stdout == ""
    assert (tmp_path / "data").is_dir()


@pytest.mark.redis
def test_a_rediss_url_keeps_papers_on_a_tls_only_redis(tmp_path: Path, redis_tls_url: str, paperbot: Run) -> None:
    with StandIn(HuggingFaceStandIn({DAYS[0]: [hf_item("2611.00013", "Mu")]})) as server:
        env = base_env(tmp_path, HF_ENDPOINT=server.url, REDIS_URL=redis_tls_url)
        first = paperbot(env, "run", "--once", "--json")
        second = paperbot(env, "run", "--once", "--json")
    assert first.returncode == 0, first.stderr
    assert [p["id"] for p in json_lines(first.stdout)] == ["2611.00013"]
    assert (second.returncode, second.stdout) == (0, "")  # remembered there
    assert not (tmp_path / "data").exists()  # no embedded store was started beside it


def test_bad_configuration_exits_2_listing_every_problem_before_connecting(tmp_path: Path, paperbot: Run) -> None:
    config = tmp_path / "paperbot.toml"
    config.write_text('[sources.huggingface]\nlookback_days = -1\n[[channels]]\nplatform = "irc"\nid = "x"\n')
    with StandIn(HuggingFaceStandIn({})) as server:
        env = base_env(tmp_path, HF_ENDPOINT=server.url, PAPERBOT_CONFIG=str(config), PAPERBOT_POLL_INTERVAL="often")
        result = paperbot(env, "run", "--once")
        assert server.requests == []
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for problem in (
        "lookback_days: must be between 0 and 30",
        "channels[1].platform",
        "PAPERBOT_POLL_INTERVAL: expected a number",
    ):
        assert problem in result.stderr


def test_unreachable_redis_is_one_clear_line_without_the_password(tmp_path: Path, paperbot: Run) -> None:
    port = free_port()
    env = base_env(tmp_path, REDIS_URL=f"redis://:hunter2-secret@127.0.0.1:{port}/0")
    result = paperbot(env, "run", "--once", "-v")
    assert result.returncode == 1
    assert f"paperbot: error: Redis at 127.0.0.1:{port} is unreachable" in result.stderr
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr


def test_the_hf_token_is_sent_but_never_logged(tmp_path: Path, paperbot: Run) -> None:
    with StandIn(HuggingFaceStandIn({DAYS[0]: [hf_item("2611.00012", "Lambda")]})) as server:
        env = base_env(tmp_path, HF_ENDPOINT=server.url, HF_TOKEN="hf_TopSecretToken123")
        server.fail("/api/daily_papers", text_response("oops", 500))
        result = paperbot(env, "run", "--once", "--json", "-vv")
    assert result.returncode == 0, result.stderr
    assert "retrying request" in result.stderr  # debug logs are on...
    assert "TopSecretToken" not in result.stderr + result.stdout  # ...and the token is not in them


def test_the_service_polls_at_start_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    with StandIn(HuggingFaceStandIn({DAYS[0]: [hf_item("2611.00013", "Mu")]})) as server:
        env = base_env(tmp_path, HF_ENDPOINT=server.url)
        command = [sys.executable, "-m", "bot", "run", "--json"]
        with subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
            try:
                assert process.stdout is not None
                assert json.loads(process.stdout.readline())["id"] == "2611.00013"
                time.sleep(0.2)
                process.send_signal(signal.SIGTERM)
                _, stderr = process.communicate(timeout=20)
            finally:
                if process.poll() is None:
                    process.kill()
    assert process.returncode == 0
    assert "Traceback" not in stderr
    assert "paperbot stopped" in stderr


def test_the_network_guard_refuses_anything_but_loopback() -> None:
    sys.path.insert(0, str(GUARD))
    try:
        import sitecustomize as guard  # the guard the subprocesses run under
    finally:
        sys.path.remove(str(GUARD))
    assert guard.allowed(("127.0.0.1", 6379))
    assert guard.allowed("/tmp/redis.sock")
    assert not guard.allowed(("93.184.216.34", 443))
    assert not guard.allowed(("huggingface.co", 443))
