"""Hostile upstreams: odd items, absurd JSON, slow servers, huge and compressed answers, echoed tokens.

Each case: ``paperbot run --once --json`` against a stand-in Hugging Face; the good papers arrive,
the bad ones cost bounded time and memory and at most a few log lines, and nothing prints a traceback.
"""

from __future__ import annotations

import json
import signal
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import service
from tests.e2e.test_run_once import DAYS, arxiv_entry, hf_item
from tests.hostile.conftest import hostile_env, ids, measured
from tests.standins import ArxivStandIn, HuggingFaceStandIn, Response, StandIn, json_response, text_response

pytestmark = pytest.mark.e2e

TOKEN = "hf_echoedsecret0123456789"
MB = 1024 * 1024


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed (about a thousandth of that), made a chunk at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(MB)
    return b"".join(packer.compress(chunk) for _ in range(size // MB)) + packer.flush()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_bomb(1024 * MB)  # 1 GiB inflated, ~1 MB on the wire


class Faulty:
    """A Hugging Face stand-in whose first day answers with ``first`` and whose other days are good."""

    def __init__(self, first: Response | None = None, page: Response | None = None) -> None:
        self.good = HuggingFaceStandIn(
            {DAYS[1]: [hf_item("2611.00011", "Good one")], DAYS[2]: [hf_item("2611.00012", "Good two")]}
        )
        self.first, self.page = first, page

    def __call__(self, path: str, query: dict[str, str]) -> Response:
        if path == "/api/daily_papers" and query.get("date") == DAYS[0] and self.first and query.get("p") == "0":
            return self.first  # its first page; later pages are empty
        if path == f"/papers/date/{DAYS[0]}" and self.page:
            return self.page
        return self.good(path, query)


def test_odd_items_are_skipped_alone_and_the_rest_delivered(real_redis_url: str, tmp_path: Path) -> None:
    surrogate = hf_item("2611.00001", "Lone \ud800 surrogate")
    ancient = hf_item("2611.00002", "From year one")
    ancient["paper"]["publishedAt"] = ancient["publishedAt"] = "0001-01-01T00:00:00+01:00"
    ancient["paper"].pop("submittedOnDailyAt", None)
    garbage = hf_item("2611.00003", "Garbage date")
    garbage["paper"]["publishedAt"] = garbage["publishedAt"] = "yesterday-ish"
    garbage["paper"].pop("submittedOnDailyAt", None)
    huge = hf_item("2611.00004", "Huge abstract")
    huge["paper"]["summary"] = "Words. " * 200_000  # 1.4 MB
    body = json.dumps([surrogate, ancient, garbage, huge, hf_item("2611.00005", "Plain")])
    with StandIn(Faulty(first=(200, {"Content-Type": "application/json"}, body.encode()))) as hf:
        run = measured(hostile_env(tmp_path, real_redis_url, hf.url), "run", "--once", "--json")
    assert run.returncode == 0, run.stderr
    assert sorted(ids(run.stdout)) == ["2611.00001", "2611.00004", "2611.00005", "2611.00011", "2611.00012"]
    titles = {row["id"]: row["title"] for row in map(json.loads, run.stdout.splitlines())}
    assert titles["2611.00001"] == "Lone surrogate"  # cleaned, and the commit to Redis did not fail
    assert run.stderr.count("skipped malformed papers") == 1  # one line for the two bad dates
    run.assert_calm()
    assert run.seconds < 30
    assert run.peak_mb < 300


def test_absurdly_deep_json_fails_one_day_not_the_poll(real_redis_url: str, tmp_path: Path) -> None:
    nested = deep(100_000)
    page = f'<div data-target="DailyPapers" data-props="{{&quot;dailyPapers&quot;: {nested}}}"></div>'
    faulty = Faulty(
        first=(200, {"Content-Type": "application/json"}, nested.encode()), page=text_response(page, content_type="text/html")
    )
    with StandIn(faulty) as hf:
        run = measured(hostile_env(tmp_path, real_redis_url, hf.url), "run", "--once", "--json")
    assert run.returncode == 0, run.stderr
    assert sorted(ids(run.stdout)) == ["2611.00011", "2611.00012"]
    assert "nested too deeply" in run.stderr
    run.assert_calm()


def test_a_server_that_trickles_is_cut_off_by_the_deadline(real_redis_url: str, tmp_path: Path) -> None:
    # Shortened for the test: PAPERBOT_HTTP_DEADLINE=2 (default 120 s). 1 byte a second never trips a read timeout.
    def trickle() -> Iterator[bytes]:
        for _ in range(60):
            yield b" "
            time.sleep(1)

    slow = (200, {"Content-Type": "application/json"}, trickle())
    page = (200, {"Content-Type": "text/html"}, trickle())
    with StandIn(Faulty(first=slow, page=page)) as hf:
        env = hostile_env(tmp_path, real_redis_url, hf.url, PAPERBOT_HTTP_DEADLINE="2")
        run = measured(env, "run", "--once", "--json", timeout=60)
    assert run.returncode == 0, run.stderr
    assert sorted(ids(run.stdout)) == ["2611.00011", "2611.00012"]
    assert "no complete answer within 2s" in run.stderr
    assert run.seconds < 15  # two slow requests (the API, then the page fallback) at 2 s each, not 60 s
    run.assert_calm()


def test_a_gzip_bomb_is_refused_with_bounded_memory(real_redis_url: str, tmp_path: Path, bomb: bytes) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    with StandIn(Faulty(first=(200, headers, bomb), page=(200, {**headers, "Content-Type": "text/html"}, bomb))) as hf:
        run = measured(hostile_env(tmp_path, real_redis_url, hf.url), "run", "--once", "--json")
    assert run.returncode == 0, run.stderr
    assert sorted(ids(run.stdout)) == ["2611.00011", "2611.00012"]
    assert "over the 32 MB cap" in run.stderr
    assert run.peak_mb < 250, run.peak_mb  # it took 2.1 GB before the cap
    run.assert_calm()


def test_a_huge_answer_is_refused_with_bounded_memory(real_redis_url: str, tmp_path: Path) -> None:
    items = [hf_item(f"2611.{n:05d}", f"Filler {n}") for n in range(100, 120)]
    body = json.dumps(items * 1100).encode()  # ~50 MB of JSON
    assert len(body) > 40 * MB
    huge = (200, {"Content-Type": "application/json"}, body)
    with StandIn(Faulty(first=huge, page=huge)) as hf:
        run = measured(hostile_env(tmp_path, real_redis_url, hf.url), "run", "--once", "--json")
    assert run.returncode == 0, run.stderr
    assert sorted(ids(run.stdout)) == ["2611.00011", "2611.00012"]
    assert "MB cap" in run.stderr
    assert run.peak_mb < 250, run.peak_mb
    run.assert_calm()


def test_half_a_million_malformed_items_log_one_line(real_redis_url: str, tmp_path: Path) -> None:
    body = json.dumps([hf_item("2611.00021", "The one good item"), *([1] * 500_000)]).encode()
    with StandIn(Faulty(first=(200, {"Content-Type": "application/json"}, body))) as hf:
        run = measured(hostile_env(tmp_path, real_redis_url, hf.url), "run", "--once", "--json")
    assert run.returncode == 0, run.stderr
    assert "2611.00021" in ids(run.stdout)
    assert run.stderr.count("skipped malformed papers") == 1
    assert "skipped=500000" in run.stderr
    assert len(run.stderr) < 5000  # it wrote 105 MB before
    run.assert_calm()


def test_an_upstream_echoing_the_token_never_gets_it_printed_or_stored(real_redis_url: str, tmp_path: Path) -> None:
    def echo(path: str, query: dict[str, str]) -> Response:
        return json_response({"error": f"bad request; you sent Authorization: Bearer {TOKEN}"}, 400)

    with StandIn(echo) as hf:
        env = hostile_env(tmp_path, real_redis_url, hf.url, HF_TOKEN=TOKEN)
        run = measured(env, "run", "--once")
        status = measured(env, "status")
    assert run.returncode == 1
    assert "every source failed" in run.stderr
    assert TOKEN not in run.stderr + run.stdout
    assert "***" in run.stderr  # the echo was there, redacted
    assert status.returncode == 0
    assert "last failure" in status.stdout
    assert TOKEN not in status.stdout + status.stderr


def test_the_embedded_store_is_private(tmp_path: Path) -> None:
    with StandIn(HuggingFaceStandIn({DAYS[0]: [hf_item("2611.00031", "Private")]})) as hf:
        env = hostile_env(tmp_path, "", hf.url)
        env.pop("REDIS_URL")
        run = measured(env, "run", "--once", "--json")
    assert run.returncode == 0, run.stderr
    data = tmp_path / "data"
    assert data.stat().st_mode & 0o777 == 0o700
    files = [p for p in data.rglob("*") if p.is_file()]
    assert files
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {"0o600"}


@pytest.mark.timeout(150)
def test_a_hugging_face_at_one_byte_a_second_does_not_hold_arxivs_papers(real_redis_url: str, tmp_path: Path) -> None:
    """The service at default settings (merge window 30 s, HTTP deadline 120 s, poll budget 600 s): arXiv's
    papers reach the channel within 90 s of the start although Hugging Face never finishes an answer."""

    def trickle(path: str, query: dict[str, str]) -> tuple[int, dict[str, str], Iterator[bytes]]:
        def body() -> Iterator[bytes]:
            for _ in range(150):
                yield b" "
                time.sleep(1)

        return 200, {"Content-Type": "application/json"}, body()

    entries = [arxiv_entry("2611.00031", "Robots, slowly"), arxiv_entry("2611.00032", "Robots, still")]
    with StandIn(trickle) as hf, StandIn(ArxivStandIn(entries)) as arxiv:
        env = hostile_env(tmp_path, real_redis_url, hf.url, ARXIV_API_URL=f"{arxiv.url}/api/query")
        env |= {"PAPERBOT_ARXIV_CATEGORIES": "cs.RO"}
        for quick in ("PAPERBOT_HTTP_BACKOFF", "PAPERBOT_HTTP_RETRIES", "PAPERBOT_HTTP_TIMEOUT", "PAPERBOT_ARXIV_MIN_INTERVAL"):
            env.pop(quick)  # the defaults a user runs, not the suite's quick ones
        started = time.monotonic()
        arrived: dict[str, float] = {}
        with service(env) as running:
            try:
                assert running.stdout is not None
                for line in running.stdout:  # one JSON object per delivered card
                    arrived[json.loads(line)["id"]] = time.monotonic() - started
                    if len(arrived) == 2 or time.monotonic() - started > 120:
                        break
            finally:
                running.send_signal(signal.SIGTERM)
                _, stderr = running.communicate(timeout=30)
    assert sorted(arrived) == ["2611.00031", "2611.00032"]
    assert max(arrived.values()) < 90, arrived
    assert "slow source: the others' papers committed first" in stderr, stderr
    print(f"\narXiv's papers delivered at {max(arrived.values()):.1f} s with Hugging Face at 1 byte a second")


@pytest.mark.timeout(240)
def test_memory_per_poll_is_bounded_by_design_not_by_the_size_cap(real_redis_url: str, tmp_path: Path) -> None:
    """256 papers with 20 KB abstracts (a 5.1 MB answer): the embedding works a batch at a time over bounded
    text, so the run peaks within 300 MB of a run with nothing new (it peaked at 1.5 GB)."""
    filler = "We study the scaling of reasoning in large models across many settings. " * 280  # ~20 KB
    items = [hf_item(f"2611.{n:05d}", f"Long abstract {n}") for n in range(300, 556)]
    for item in items:
        item["paper"]["summary"] = filler
    assert len(json.dumps(items)) > 5 * MB
    with StandIn(HuggingFaceStandIn({DAYS[0]: items})) as hf:
        env = hostile_env(tmp_path, real_redis_url, hf.url, PAPERBOT_FIRST_RUN_LIMIT="0")
        loaded = measured(env, "run", "--once", "--json", timeout=200)
        idle = measured(env, "run", "--once", "--json", timeout=200)  # the same papers again: nothing new
    assert loaded.returncode == 0, loaded.stderr
    assert len(ids(loaded.stdout)) == 256
    assert loaded.peak_mb - idle.peak_mb < 300, (loaded.peak_mb, idle.peak_mb)
    print(f"\npeak RSS: {loaded.peak_mb:.0f} MB with 256 × 20 KB abstracts, {idle.peak_mb:.0f} MB with nothing new")
