"""The real bolt app, driven with signed recorded payloads: /papers, reactions, buttons, App Home."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import bibtexparser
import httpx
import pytest
from aiohttp import web
from slack_bolt.request.async_request import AsyncBoltRequest

from adapters.slack.inbound import SlackInbound, event_routes
from adapters.slack.outbound import web_client
from bot.flow.delivery import Deliverer
from bot.model import Channel, Delivery, Destination, UserRef
from tests.fakes import make_paper
from tests.redis_servers import free_port
from tests.slack.conftest import SECRET, SlackHarness, action_body, event_body, signed, slash_body
from tests.slack.standin import block_problems
from tests.world import World

C1 = Destination("slack", "C1")
FORM, JSON = "application/x-www-form-urlencoded", "application/json"


async def post_paper(slack: SlackHarness, title: str = "Reasoning with tokens") -> str:
    """Deliver one paper to C1 through the adapter, as a cycle would; return its message ts."""
    paper = make_paper("2611.00001", title=title)
    await slack.world.store.commit([paper], [Delivery(C1, paper.id)])
    report = await Deliverer(
        slack.world.store, slack.world.store, {"slack": slack.adapter}, "w", 60, coordination=slack.world.coordination
    ).deliver()
    assert report.delivered == 1
    return slack.api.accepted[-1]["ts"]


async def test_papers_query_is_answered_ephemerally_in_the_ack(slack: SlackHarness) -> None:
    await post_paper(slack)
    status, body = await slack.dispatch(signed(slash_body("reasoning"), FORM))
    assert status == 200
    answer = json.loads(body)
    assert answer["response_type"] == "ephemeral"
    assert (answer["unfurl_links"], answer["unfurl_media"]) == (False, False)  # no previews under a reply
    assert answer["text"] == "1 paper matches “reasoning” (showing 1–1)"
    assert answer["blocks"][1]["text"]["text"].startswith("*<https://arxiv.org/abs/2611.00001|Reasoning with tokens>*")


async def test_a_slow_answer_is_acked_at_once_and_sent_to_the_response_url(slack: SlackHarness) -> None:
    slow = SlackInbound(
        web_client("xoxb-test-token", slack.api.api_url), signing_secret="test-signing-secret-0123456789", ack_budget=0
    )
    app = slow.build_app(slack.world.core, process_before_response=True)
    hook = f"{slack.api.url}/hooks/cmd-1"
    response = await app.async_dispatch(signed(slash_body("help", response_url=hook), FORM))
    assert json.loads(response.body) == {"response_type": "ephemeral", "text": "Looking…"}
    [sent] = slack.api.methods("cmd-1")
    assert sent["response_type"] == "ephemeral"
    assert sent["replace_original"] is True
    assert sent["text"].startswith("/papers &lt;query&gt;")


async def test_bad_signatures_and_stale_timestamps_get_401(slack: SlackHarness) -> None:
    assert (await slack.dispatch(signed(slash_body("help"), FORM, secret="wrong-secret")))[0] == 401
    assert (await slack.dispatch(signed(slash_body("help"), FORM, age=6 * 60)))[0] == 401
    tampered = signed(slash_body("help"), FORM)
    tampered.raw_body = slash_body("subscribe everything")
    assert (await slack.dispatch(AsyncBoltRequest(body=slash_body("subscribe everything"), headers=tampered.headers)))[0] == 401
    assert await slack.world.subscriptions.topics(C1) == []


async def test_subscribe_from_slack_reaches_the_core(slack: SlackHarness) -> None:
    _, body = await slack.dispatch(signed(slash_body("subscribe cat:cs.CL OR reasoning"), FORM))
    assert "Subscribed this channel to “cat:cs.CL OR reasoning”" in json.loads(body)["text"]
    assert await slack.world.subscriptions.topics(C1) == ["cat:cs.CL OR reasoning"]


async def test_reaction_saves_once_then_lists_and_removal_unsaves(slack: SlackHarness) -> None:
    ts = await post_paper(slack)
    reaction = {"user": "UADA", "reaction": "bookmark", "item": {"type": "message", "channel": "C1", "ts": ts}}
    for _ in range(2):  # Slack retries the same event: processed once
        assert (await slack.dispatch(signed(event_body("reaction_added", "Ev001", **reaction), JSON)))[0] == 200
    assert [s.paper.id for s in await slack.world.library.saved(UserRef("slack", "UADA"))] == ["2611.00001"]
    assert len(slack.api.methods("chat.postEphemeral")) == 1
    _, body = await slack.dispatch(signed(slash_body("saved"), FORM))
    assert "1. Reasoning with tokens — 2611.00001" in json.loads(body)["text"]
    await slack.dispatch(signed(event_body("reaction_removed", "Ev002", **{**reaction, "type": "reaction_removed"}), JSON))
    assert await slack.world.library.saved(UserRef("slack", "UADA")) == []


async def test_other_reactions_other_messages_and_the_bots_own_are_ignored(slack: SlackHarness) -> None:
    ts = await post_paper(slack)
    cases = [
        {"user": "UADA", "reaction": "thumbsup", "item": {"type": "message", "channel": "C1", "ts": ts}},
        {"user": "UADA", "reaction": "bookmark", "item": {"type": "message", "channel": "C1", "ts": "1.000001"}},
        {"user": "UADA", "reaction": "bookmark", "item": {"type": "message", "channel": "C2", "ts": ts}},
        {"user": "UBOT", "reaction": "bookmark", "item": {"type": "message", "channel": "C1", "ts": ts}},
    ]
    for number, reaction in enumerate(cases):
        assert (await slack.dispatch(signed(event_body("reaction_added", f"Ev1{number}", **reaction), JSON)))[0] == 200
    assert await slack.world.library.saved(UserRef("slack", "UADA")) == []
    assert await slack.world.library.saved(UserRef("slack", "UBOT")) == []


async def test_the_save_button_saves_and_confirms_ephemerally(slack: SlackHarness) -> None:
    await post_paper(slack)
    hook = f"{slack.api.url}/hooks/action-1"
    status, _ = await slack.dispatch(signed(action_body("paper_save", "2611.00001", "UBOB", hook), FORM))
    assert status == 200
    [confirmation] = slack.api.methods("action-1")
    assert confirmation == {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": "Saved “Reasoning with tokens”.",
        "unfurl_links": False,
        "unfurl_media": False,
    }
    assert [s.paper.id for s in await slack.world.library.saved(UserRef("slack", "UBOB"))] == ["2611.00001"]


async def test_app_home_lists_saved_papers_and_unsave_updates_it(slack: SlackHarness) -> None:
    await post_paper(slack)
    await slack.world.core.save(UserRef("slack", "U123ABC456"), "2611.00001")
    await slack.dispatch(signed(event_body("app_home_opened", "EvHome1"), JSON))
    [published] = slack.api.methods("views.publish")
    assert published["user_id"] == "U123ABC456"
    home = published["view"] if isinstance(published["view"], dict) else json.loads(published["view"])
    assert "Reasoning with tokens" in home["blocks"][1]["text"]["text"]
    assert home["blocks"][1]["accessory"]["action_id"] == "paper_unsave"
    await slack.dispatch(
        signed(action_body("paper_unsave", "2611.00001", "U123ABC456", f"{slack.api.url}/hooks/h", view={"type": "home"}), FORM)
    )
    assert await slack.world.library.saved(UserRef("slack", "U123ABC456")) == []
    assert "Nothing saved yet" in json.dumps(slack.api.methods("views.publish")[-1])


async def test_socket_mode_payloads_skip_signatures_and_work(slack: SlackHarness) -> None:
    body = dict(pair.split("=", 1) for pair in slash_body("help").split("&"))
    body.update(text="help", command="/papers")
    response = await slack.app.async_dispatch(AsyncBoltRequest(body=body, mode="socket_mode"))
    assert response.status == 200
    assert json.loads(response.body)["text"].startswith("/papers &lt;query&gt;")


@asynccontextmanager
async def events_site(slack: SlackHarness) -> AsyncIterator[int]:
    """HTTP mode's ``POST /slack/events`` (signatures checked) served on a free loopback port, then stopped."""
    app = SlackInbound(web_client("xoxb-test-token", slack.api.api_url), signing_secret=SECRET).build_app(slack.world.core)
    web_app = web.Application()
    web_app.router.add_routes(event_routes(app, SECRET))
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


async def test_malformed_unsigned_requests_get_400_or_401_and_no_traceback(
    slack: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    async with events_site(slack) as port:
        url = f"http://127.0.0.1:{port}/slack/events"
        now = str(int(time.time()))
        junk = [
            (b"{not json", {"Content-Type": JSON}),
            (b"[1, 2, 3]", {"Content-Type": JSON}),
            (b"\xff\xfe\x00garbage", {"Content-Type": JSON}),
            (b"token=x&command=/papers", {"Content-Type": FORM}),
            (b"", {}),
            (b"payload=%7B%22type%22%3A%22block_actions%22%7D", {"Content-Type": FORM}),
            (b"{}", {"Content-Type": JSON, "X-Slack-Request-Timestamp": "x", "X-Slack-Signature": "v0=abc"}),
            (b"{}", {"Content-Type": JSON, "X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0=" + "0" * 64}),
            (b"{}", {"Content-Type": JSON, "X-Slack-Request-Timestamp": "-1", "X-Slack-Signature": "v0=abc"}),
            (b"{}", {"Content-Type": JSON, "X-Slack-Request-Timestamp": "9" * 40, "X-Slack-Signature": "v0=abc"}),
            # Not UTF-8, with a current timestamp: slack_sdk's verifier raised UnicodeDecodeError on it (a 500 and a traceback).
            (
                b"\xff\xfe\x00garbage",
                {"Content-Type": JSON, "X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0=" + "0" * 64},
            ),
        ]
        junk += [(body + b" ", headers) for body, headers in junk]  # twenty-two
        async with httpx.AsyncClient() as http:
            statuses = [(await http.post(url, content=body, headers=headers)).status_code for body, headers in junk]
            signed_help = signed(slash_body("help"), FORM)
            ok = await http.post(
                url, content=signed_help.raw_body.encode(), headers={k: v[0] for k, v in signed_help.headers.items()}
            )
    assert len(statuses) == 22
    assert set(statuses) <= {400, 401}, statuses
    assert ok.status_code == 200  # a real, signed command still gets through
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


async def test_only_workspace_admins_change_subscriptions_when_managers_is_the_rule(slack: SlackHarness) -> None:
    world = World(managers="managers")
    app = SlackInbound(web_client("xoxb-test-token", slack.api.api_url), signing_secret=SECRET).build_app(world.core)
    refused = await app.async_dispatch(signed(slash_body("subscribe robots", user="UADA", channel="C1"), FORM))
    slack.api.admins.add("UADA")  # users.info now says UADA is a workspace admin
    accepted = await app.async_dispatch(signed(slash_body("subscribe robots", user="UADA", channel="C1"), FORM))
    topics = await world.subscriptions.topics(Destination("slack", "C1"))
    await world.aclose()
    assert "can change this channel's subscriptions" in json.loads(refused.body)["text"]
    assert json.loads(accepted.body)["text"].startswith("Subscribed")
    assert topics == ["robots"]


async def save_many(slack: SlackHarness, count: int) -> list[str]:
    papers = [make_paper(f"2611.{n:05d}", title=f"Saved *paper* with_underscore {n}") for n in range(count)]
    await slack.world.store.commit(papers, [])
    for paper in papers:
        await slack.world.core.save(UserRef("slack", "UADA"), paper.id)
    return [p.id for p in papers]


@pytest.mark.parametrize("count", [0, 1, 40, 200])
async def test_export_arrives_as_a_file_in_the_persons_direct_messages(slack: SlackHarness, count: int) -> None:
    ids = await save_many(slack, count)
    hook = f"{slack.api.url}/hooks/export-{count}"
    status, body = await slack.dispatch(signed(slash_body("export", response_url=hook), FORM))
    assert status == 200
    if not count:
        assert json.loads(body)["text"] == "You have no saved papers to export."
        assert slack.api.uploads == []
        return
    assert json.loads(body) == {"response_type": "ephemeral", "text": "Preparing saved-papers.bib…"}  # in the ack
    await answered(slack, f"export-{count}")
    [upload] = slack.api.uploads
    assert upload["channel"] == "DUADA"  # private, never the channel
    assert upload["filename"] == "saved-papers.bib"
    entries = bibtexparser.parse_string(upload["content"].decode()).entries
    assert [e.fields_dict["eprint"].value for e in entries] == list(reversed(ids))  # whole: newest first
    [answer] = slack.api.methods(f"export-{count}")
    assert answer["blocks"][0]["text"]["text"] == (
        f"Sent saved-papers.bib ({count} papers) to your direct messages with paperbot."
    )


async def test_without_the_file_scopes_an_export_is_shown_in_code_blocks_saying_what_was_cut(slack: SlackHarness) -> None:
    slack.api.files_scope = False
    await save_many(slack, 200)
    hook = f"{slack.api.url}/hooks/export-fallback"
    await slack.dispatch(signed(slash_body("export", response_url=hook), FORM))
    await answered(slack, "export-fallback")
    [answer] = slack.api.methods("export-fallback")
    blocks = answer["blocks"]
    assert block_problems(blocks) == []
    assert blocks[1]["text"]["text"].startswith("```@")
    assert "of 200 entries" in blocks[-1]["elements"][0]["text"]
    assert "files:write" in blocks[-1]["elements"][0]["text"]


async def answered(slack: SlackHarness, hook: str, seconds: float = 10) -> None:
    """Wait until the command's follow-up reached its response_url (bolt acks first, then goes on)."""
    deadline = time.monotonic() + seconds
    while not slack.api.methods(hook):  # the stand-in records from its own thread
        assert time.monotonic() < deadline, f"no follow-up on {hook}"
        await asyncio.sleep(0.02)


async def test_a_reaction_in_a_digest_thread_is_confirmed_in_that_thread(slack: SlackHarness) -> None:
    papers = [make_paper(f"2611.0010{i}", upvotes=i) for i in range(3)]
    await slack.world.store.commit(papers, [Delivery(C1, p.id) for p in papers])
    deliverer = Deliverer(
        slack.world.store,
        slack.world.store,
        {"slack": slack.adapter},
        "w",
        60,
        channel=lambda d: Channel(d, mode="digest", digest_size=1),
        coordination=slack.world.coordination,
    )
    assert (await deliverer.deliver()).delivered == 3
    parent, first_reply, _ = slack.api.accepted
    reaction = {"user": "UADA", "reaction": "bookmark", "item": {"type": "message", "channel": "C1", "ts": first_reply["ts"]}}
    await slack.dispatch(signed(event_body("reaction_added", "EvThread1", **reaction), JSON))
    [told] = slack.api.methods("chat.postEphemeral")
    assert told["thread_ts"] == parent["ts"]  # where the person reacted, not out in the channel
    assert told["text"].startswith("Saved")


async def test_a_client_that_hangs_up_mid_body_leaves_no_error_in_the_log(
    slack: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    async with events_site(slack) as port:
        with caplog.at_level(logging.DEBUG):
            for _ in range(5):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                head = "POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                head += f"X-Slack-Request-Timestamp: {int(time.time())}\r\n\r\n"
                writer.write(head.encode() + b'{"type": "ev')  # ten bytes of a thousand, then gone
                await writer.drain()
                writer.close()
                await writer.wait_closed()
            await asyncio.sleep(0.3)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
