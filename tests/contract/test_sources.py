"""Hugging Face and arXiv sources on recorded payloads, every variant in sources.md §6."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, date, datetime

import httpx
import pytest

from bot.errors import SourceError
from bot.pacing import MinInterval
from bot.sources.arxiv import ArxivSource, parse_feed
from bot.sources.http import RetryingGetter, make_client
from bot.sources.huggingface import HuggingFaceSource, paper_from_item, papers_from_items, papers_from_page
from tests.conftest import fixture_json, fixture_text
from tests.standins import ArxivEntry, atom_feed

TODAY = date(2026, 3, 6)


async def no_sleep(_: float) -> None:
    return None


def getter_for(handler: Callable[[httpx.Request], httpx.Response]) -> RetryingGetter:
    client = make_client(5.0, transport=httpx.MockTransport(handler))
    return RetryingGetter(client, retries=2, backoff=0.0, sleep=no_sleep, rng=random.Random(0))


# ---------------------------------------------------------------- Hugging Face: items


def test_the_complete_real_item_keeps_every_field_a_reader_wants() -> None:
    [paper] = papers_from_items(fixture_json("hf_daily_full.json"), "fixture")
    assert paper.id == "2602.23229"
    assert paper.title == "Large Multimodal Models as General In-Context Classifiers"
    assert paper.authors == ("Marco Garosi", "Matteo Farina", "Alessandro Conti", "Massimiliano Mancini", "Elisa Ricci")
    assert paper.published == datetime(2026, 2, 26, 17, 8, 18, tzinfo=UTC)
    assert paper.featured_on == datetime(2026, 3, 6, 3, 55, 12, 777000, tzinfo=UTC)
    assert paper.organization == "Multimedia and Human Understanding Group"
    assert paper.upvotes == 10
    assert paper.github_stars == 9
    assert paper.num_comments == 1
    assert paper.ai_summary.startswith("Large Multimodal Models demonstrate superior performance")
    assert paper.keywords[:2] == ("Vision-Language Models", "Large Multimodal Models")
    assert paper.links.code == "https://github.com/marco-garosi/CIRCLE"
    assert paper.links.project == "https://circle-lmm.github.io/"
    assert paper.links.hf == "https://huggingface.co/papers/2602.23229"
    assert paper.links.pdf == "https://arxiv.org/pdf/2602.23229"
    assert paper.thumbnail == "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2602.23229.png"
    assert paper.sources == frozenset({"huggingface"})


def test_variants_without_ai_fields_repo_org_and_with_midnight_times() -> None:
    papers = {p.id: p for p in papers_from_items(fixture_json("hf_daily_variants.json"), "fixture")}
    fresh = papers["2607.18811"]
    assert fresh.ai_summary == ""
    assert fresh.keywords == ()
    assert fresh.links.code == ""
    assert fresh.links.project == ""
    assert fresh.organization == ""
    assert fresh.published == datetime(2026, 7, 23, tzinfo=UTC)  # paper.publishedAt wins over the ET-shifted outer one
    assert fresh.title == "Sparse Autoencoders Find Reasoning Circuits in Small Language Models"
    assert "\n" not in fresh.abstract
    assert "$" in fresh.abstract


def test_hidden_authors_are_skipped_and_claimed_authors_keep_their_name() -> None:
    papers = {p.id: p for p in papers_from_items(fixture_json("hf_daily_variants.json"), "fixture")}
    assert papers["2509.04664"].authors == ("Minyang Tian", "Adam Tauman Kalai")


def test_the_2024_shape_with_a_null_repo() -> None:
    papers = {p.id: p for p in papers_from_items(fixture_json("hf_daily_variants.json"), "fixture")}
    old = papers["2409.11074"]
    assert old.links.code == ""
    assert old.featured_on is None
    assert old.published == datetime(2024, 9, 17, 5, 55, 21, tzinfo=UTC)


def test_broken_items_are_skipped_without_hiding_the_good_ones(caplog: pytest.LogCaptureFixture) -> None:
    good = fixture_json("hf_daily_full.json")[0]
    items = [{"paper": {"title": "no id"}}, "not an object", {"paper": {"id": "2602.00001", "title": ""}}, good]
    assert [p.id for p in papers_from_items(items, "fixture")] == ["2602.23229"]
    [line] = [r for r in caplog.records if r.getMessage() == "skipped malformed papers"]  # one line, however many
    assert line.kv["skipped"] == 3  # type: ignore[attr-defined]


def test_hostile_links_are_dropped() -> None:
    item = fixture_json("hf_daily_full.json")[0]
    item["paper"]["githubRepo"] = "javascript:alert(1)"
    item["paper"]["projectPage"] = "https://x.example/<!channel>"
    item["thumbnail"] = "http://tracker.example/p.png"
    paper = paper_from_item(item)
    assert paper.links.code == ""
    assert paper.links.project == ""
    assert paper.thumbnail.startswith("https://cdn-thumbnails.huggingface.co/")


# ---------------------------------------------------------------- Hugging Face: page fallback


def test_the_server_rendered_page_gives_the_same_papers_as_the_api() -> None:
    papers = papers_from_page(fixture_text("hf_daily_page.html"), "fixture")
    assert [p.id for p in papers] == ["2602.23229", "2607.18811"]
    assert papers[0] == papers_from_items(fixture_json("hf_daily_full.json"), "fixture")[0]


def test_a_page_without_the_data_says_the_layout_changed() -> None:
    with pytest.raises(SourceError, match="page layout changed"):
        papers_from_page(fixture_text("hf_page_without_props.html"), "fixture")


# ---------------------------------------------------------------- Hugging Face: fetching


def hf_source(handler: Callable[[httpx.Request], httpx.Response], lookback: int = 0, page_size: int = 100) -> HuggingFaceSource:
    return HuggingFaceSource(getter_for(handler), "https://hf.test", lookback, page_size, today=lambda: TODAY)


def item(pid: str) -> dict:
    base = json.loads(json.dumps(fixture_json("hf_daily_full.json")[0]))
    base["paper"]["id"] = pid
    return base


async def test_each_day_of_the_window_is_read_and_paged_until_a_short_page() -> None:
    days = {"2026-03-06": [item(f"2603.0000{i}") for i in range(5)], "2026-03-05": [], "2026-03-04": [item("2603.00009")]}
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        q = request.url.params
        seen.append((q["date"], q["p"]))
        assert request.url.path == "/api/daily_papers"
        page, limit = int(q["p"]), int(q["limit"])
        return httpx.Response(200, json=days[q["date"]][page * limit : (page + 1) * limit])

    papers = await hf_source(handler, lookback=2, page_size=2).fetch()
    assert [p.id for p in papers] == [f"2603.0000{i}" for i in range(5)] + ["2603.00009"]
    assert seen == [("2026-03-06", "0"), ("2026-03-06", "1"), ("2026-03-06", "2"), ("2026-03-05", "0"), ("2026-03-04", "0")]


@pytest.mark.parametrize(
    "bad_answer",
    [
        httpx.Response(400, json={"error": "Invalid date"}),
        httpx.Response(200, text="<html>Service temporarily unavailable</html>", headers={"Content-Type": "text/html"}),
        httpx.Response(200, json={"error": "unexpected object"}),
        httpx.Response(404, json={"error": "Not Found"}),
    ],
    ids=["400-error-json", "200-html", "200-object", "404"],
)
async def test_an_api_that_misbehaves_falls_back_to_the_page(bad_answer: httpx.Response) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/daily_papers":
            return bad_answer
        assert request.url.path == "/papers/date/2026-03-06"
        return httpx.Response(200, text=fixture_text("hf_daily_page.html"))

    assert [p.id for p in await hf_source(handler).fetch()] == ["2602.23229", "2607.18811"]


async def test_429_with_ratelimit_headers_is_retried() -> None:
    answers = [
        httpx.Response(
            429,
            headers={"RateLimit": '"api";r=0;t=1', "RateLimit-Policy": '"fixed window";"api";q=500;w=300', "Retry-After": "0"},
        ),
        httpx.Response(200, json=fixture_json("hf_daily_full.json")),
    ]
    papers = await hf_source(lambda request: answers.pop(0)).fetch()
    assert [p.id for p in papers] == ["2602.23229"]


async def test_weekend_days_are_empty_not_errors() -> None:
    assert await hf_source(lambda request: httpx.Response(200, json=[]), lookback=1).fetch() == []


async def test_one_failing_day_does_not_hide_the_others(caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "2026-03-06" in str(request.url):
            return httpx.Response(500)
        return httpx.Response(200, json=fixture_json("hf_daily_full.json"))

    assert [p.id for p in await hf_source(handler, lookback=1).fetch()] == ["2602.23229"]
    assert "a Daily Papers day failed" in caplog.text


async def test_every_day_failing_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="every day failed"):
        await hf_source(lambda request: httpx.Response(503), lookback=1).fetch()


async def test_a_dead_host_is_not_asked_again_for_pages_or_other_days() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        raise httpx.ConnectError("refused")

    with pytest.raises(SourceError, match="connection failed"):
        await hf_source(handler, lookback=2).fetch()
    assert len(calls) == 3  # one request, two retries; no fallback page, no other days


# ---------------------------------------------------------------- arXiv: parsing


def test_the_old_atom_format_with_an_old_style_id() -> None:
    papers = {p.id: p for p in parse_feed(fixture_text("arxiv_old_format.atom"))}
    survey = papers["2509.08827"]
    assert survey.title == "A Survey of Reinforcement Learning for Large Reasoning Models"
    assert survey.categories == ("cs.CL", "cs.AI", "I.2.7")
    assert survey.authors == ("Kaiyan Zhang", "Yuxin Zuo")
    assert "mathematics & coding" in survey.abstract  # &amp; unescaped exactly once
    assert survey.links.abstract == "https://arxiv.org/abs/2509.08827"
    old = papers["hep-ex/0307015"]
    assert old.published == datetime(2003, 7, 7, 17, 46, 39, tzinfo=UTC)
    assert old.authors == ("H1 Collaboration",)
    assert old.title == "Multi-Electron Production at High Transverse Momenta in ep Collisions at HERA"


def test_the_new_atom_format_with_numeric_entities() -> None:
    papers = {p.id: p for p in parse_feed(fixture_text("arxiv_new_format.atom"))}
    tamp = papers["2609.30233"]
    assert tamp.authors[-1] == "Tomás Lozano-Pérez"
    assert tamp.categories == ("cs.RO",)
    assert tamp.sources == frozenset({"arxiv"})
    vla = papers["2609.29871"]
    assert vla.title == r"Vision-Language-Action Models Need Better Benchmarks: A $\mathbf{10}\times$ Harder Suite"
    assert vla.authors == ("Zoë Ngọc Trần",)
    assert "— none exceeds" in vla.abstract


def test_an_error_feed_is_a_source_error() -> None:
    with pytest.raises(SourceError, match=r"incorrect id format for 1234\.12345"):
        parse_feed(fixture_text("arxiv_error.atom"))


def test_a_zero_result_feed_is_empty() -> None:
    assert parse_feed(fixture_text("arxiv_empty.atom")) == []


@pytest.mark.parametrize(
    "body",
    [
        "Rate exceeded.",
        "<html><body>502 Bad Gateway</body></html>",
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><feed>&lol2;</feed>',
    ],
    ids=["plain-text", "html", "entity-expansion"],
)
def test_garbage_is_a_source_error(body: str) -> None:
    with pytest.raises(SourceError):
        parse_feed(body)


# ---------------------------------------------------------------- arXiv: fetching


async def test_arxiv_pages_newest_first_until_past_the_window_and_keeps_pace() -> None:
    entries = [ArxivEntry(f"2603.0{i:04d}", f"Paper {i}", datetime(2026, 3, 6 - i // 2, 12, tzinfo=UTC)) for i in range(12)]
    ordered = sorted(entries, key=lambda e: e.published, reverse=True)
    requests: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        q = dict(request.url.params)
        requests.append(q)
        start, size = int(q["start"]), int(q["max_results"])
        return httpx.Response(200, text=atom_feed(ordered[start : start + size]))

    now, waits = [0.0], []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    source = ArxivSource(
        getter_for(handler),
        "https://arxiv.test/api/query",
        ("cs.CL", "cs.LG"),
        lookback_days=2,
        page_size=4,
        pace=MinInterval(3.0, clock=lambda: now[0], sleep=sleep),
        today=lambda: TODAY,
    )
    papers = await source.fetch()
    assert requests[0]["search_query"] == "cat:cs.CL OR cat:cs.LG"
    assert (requests[0]["sortBy"], requests[0]["sortOrder"]) == ("submittedDate", "descending")
    assert [int(r["start"]) for r in requests] == [0, 4]  # the second page reaches past 2026-03-04
    assert {p.published.date() for p in papers} == {date(2026, 3, 6), date(2026, 3, 5), date(2026, 3, 4)}
    assert len(papers) == 6
    assert waits == [3.0]


async def test_arxiv_rate_limit_is_retried() -> None:
    answers = [
        httpx.Response(429, text="Rate exceeded."),
        httpx.Response(200, text=atom_feed([ArxivEntry("2603.00001", "T", datetime(2026, 3, 6, tzinfo=UTC))])),
    ]
    source = ArxivSource(
        getter_for(lambda request: answers.pop(0)), "https://arxiv.test/q", ("cs.CL",), pace=MinInterval(0), today=lambda: TODAY
    )
    assert [p.id for p in await source.fetch()] == ["2603.00001"]


async def test_arxiv_http_errors_are_source_errors() -> None:
    source = ArxivSource(
        getter_for(lambda request: httpx.Response(400, text="bad query")), "https://arxiv.test/q", ("cs.CL",), pace=MinInterval(0)
    )
    with pytest.raises(SourceError, match="HTTP 400 bad query"):
        await source.fetch()


async def test_an_empty_weekday_answer_is_asked_again_before_it_is_believed() -> None:
    answers = [
        httpx.Response(200, text=fixture_text("arxiv_empty.atom")),
        httpx.Response(200, text=atom_feed([ArxivEntry("2603.00001", "T", datetime(2026, 3, 6, tzinfo=UTC))])),
    ]
    friday = date(2026, 3, 6)
    source = ArxivSource(
        getter_for(lambda request: answers.pop(0)), "https://arxiv.test/q", ("cs.CL",), pace=MinInterval(0), today=lambda: friday
    )
    assert [p.id for p in await source.fetch()] == ["2603.00001"]
    saturday_answers = [httpx.Response(200, text=fixture_text("arxiv_empty.atom"))]
    quiet = ArxivSource(
        getter_for(lambda request: saturday_answers.pop(0)),
        "https://arxiv.test/q",
        ("cs.CL",),
        pace=MinInterval(0),
        today=lambda: date(2026, 3, 7),
    )
    assert await quiet.fetch() == []  # one request: a Saturday is allowed to be empty
