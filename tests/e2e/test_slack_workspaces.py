"""Multi-workspace Slack end to end: ``paperbot run`` with SLACK_CLIENT_ID/SLACK_CLIENT_SECRET, two
workspaces installed through /slack/install and /slack/oauth_redirect against a stand-in
``oauth.v2.access``/``auth.test`` that checks every call's token, each workspace's commands and posts
with its own token, a replayed or forged state refused, and an uninstall that removes everything of one
workspace while the other keeps working."""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis

from adapters.slack.oauth import SCOPES
from tests.e2e.conftest import Run, base_env, serving
from tests.e2e.test_health import sample, wait_for
from tests.e2e.test_run_once import DAYS, hf_item
from tests.e2e.test_slack_e2e import signed_post, slash
from tests.redis_servers import free_port
from tests.slack.standin import SlackStandIn
from tests.standins import HuggingFaceStandIn, StandIn

pytestmark = pytest.mark.e2e
SECRET = "workspaces-signing-secret"
CLIENT_ID, CLIENT_SECRET = "1111.2222", "client-secret-for-tests"
FORM = "application/x-www-form-urlencoded"


def start_install(base: str) -> tuple[str, str]:
    """GET /slack/install: the Add to Slack link (checked) and the state it carries."""
    page = httpx.get(f"{base}/slack/install", timeout=10)
    assert page.status_code == 200
    link = html.unescape(re.search(r'id="add-to-slack" href="([^"]+)"', page.text).group(1))  # type: ignore[union-attr]
    query = parse_qs(urlsplit(link).query)
    assert link.startswith("https://slack.com/oauth/v2/authorize?")
    assert query["client_id"] == [CLIENT_ID]
    assert set(query["scope"][0].split(",")) == set(SCOPES)
    assert f"slack-app-oauth-state={query['state'][0]}" in page.headers["set-cookie"]
    return link, query["state"][0]


def finish_install(base: str, code: str, state: str) -> httpx.Response:
    """Slack's redirect back, from the browser that started the install (it carries the state cookie)."""
    cookie = {"Cookie": f"slack-app-oauth-state={state}"}
    return httpx.get(f"{base}/slack/oauth_redirect", params={"code": code, "state": state}, headers=cookie, timeout=10)


def test_two_workspaces_install_use_their_own_tokens_and_one_uninstall_removes_only_its_own(
    real_redis_url: str, tmp_path: Path, paperbot: Run
) -> None:
    hf = HuggingFaceStandIn({DAYS[0]: [hf_item("2611.00051", "Protein Design")]})
    installs = {"code-one": ("T1", "Lab One"), "code-two": ("T2", "Lab Two")}
    api = SlackStandIn(installs=installs, app_credentials=(CLIENT_ID, CLIENT_SECRET), admins={"U1", "U2"})
    api.workspaces["xoxb-nobody"] = "T0"  # the stand-in checks tokens from the start
    with StandIn(hf) as hf_server, api:
        port = str(free_port())
        env = base_env(
            tmp_path,
            REDIS_URL=real_redis_url,
            HF_ENDPOINT=hf_server.url,
            SLACK_API_URL=api.api_url,
            SLACK_CLIENT_ID=CLIENT_ID,
            SLACK_CLIENT_SECRET=CLIENT_SECRET,
            SLACK_SIGNING_SECRET=SECRET,
            PORT=port,
        )
        base = f"http://127.0.0.1:{port}"
        # The service answers Slack and polls; `run --once` processes deliver (so a queue can wait for them).
        with serving(env, "--role", "poller", secrets=(CLIENT_SECRET, SECRET, "xoxb-T1", "xoxb-T2")):
            wait_for(lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 200)

            # Two workspaces install; a replayed and a forged state are refused.
            _, state_one = start_install(base)
            done = finish_install(base, "code-one", state_one)
            assert done.status_code == 200
            assert "paperbot is installed in Lab One" in done.text
            assert "/invite @paperbot" in done.text
            assert "/papers subscribe" in done.text
            replayed = finish_install(base, "code-one", state_one)
            assert replayed.status_code == 401
            assert "already used or has expired" in replayed.text
            forged = finish_install(base, "code-two", "forged-state")
            assert forged.status_code == 401
            assert "paperbot was not installed" in forged.text
            _, state_two = start_install(base)
            assert "Lab Two" in finish_install(base, "code-two", state_two).text
            assert sample(httpx.get(f"{base}/metrics").text, "paperbot_installations") == 2

            # A command from each workspace is answered with that workspace's token.
            for team, user, channel in (("T1", "U1", "C1"), ("T2", "U2", "C2")):
                answer = signed_post(port, slash("subscribe reasoning", user, channel, team), FORM, secret=SECRET)
                assert answer.status_code == 200
                assert answer.json()["text"].startswith("Subscribed"), answer.json()
            assert ("users.info", "T1", "U1") in api.teams
            assert ("users.info", "T2", "U2") in api.teams

            # A post for each goes with the right token.
            hf.days[DAYS[0]].append(hf_item("2611.00052", "Reasoning at Scale"))
            assert paperbot(env, "run", "--once").returncode == 0
            posts = [(team, channel) for method, team, channel in api.teams if method == "chat.postMessage"]
            assert sorted(posts) == [("T1", "C1"), ("T2", "C2")]

            # T1 uninstalls while a paper is queued for both: everything of T1 goes, T2 goes on.
            hf.days[DAYS[0]].append(hf_item("2611.00053", "Reasoning Again"))
            assert paperbot(env, "run", "--once", "--role", "poller").returncode == 0
            event = {"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": "EvUninstall1"}
            event |= {"event_time": int(time.time()), "event": {"type": "app_uninstalled"}}
            assert signed_post(port, json.dumps(event), "application/json", secret=SECRET).status_code == 200
            wait_for(lambda: sample(httpx.get(f"{base}/metrics").text, "paperbot_installations") == 1)
            assert paperbot(env, "run", "--once").returncode == 0
            posts = [(team, channel) for method, team, channel in api.teams if method == "chat.postMessage"]
            assert sorted(posts) == [("T1", "C1"), ("T2", "C2"), ("T2", "C2")]
            still = signed_post(port, slash("subscribe diffusion", "U2", "C2", "T2"), FORM, secret=SECRET)
            assert still.json()["text"].startswith("Subscribed")
    store = redis.Redis.from_url(real_redis_url)
    prefix = env["PAPERBOT_KEY_PREFIX"]
    keys = {k.decode() for k in store.scan_iter(match=prefix + "*")}
    assert [k for k in keys if "T1" in k] == []
    assert store.hkeys(prefix + "installs") == [b"T2"]
    assert b"bot_token" not in b"".join(store.hvals(prefix + "installs"))  # sealed: nothing readable in Redis
    assert store.smembers(prefix + "subscribed") == {b"slack:T2/C2"}
    assert all(b"T1/" not in fields[b"dest"] for _, fields in store.xrange(prefix + "outbox"))
    store.close()
