"""A stand-in Slack Web API on 127.0.0.1: records calls, checks Block Kit limits like Slack, injects faults."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from adapters.slack.oauth import SCOPES
from tests.specs import slack as slack_spec

LIMITS = {"blocks": 50, "section": 3000, "header": 150, "context": 10, "actions": 25, "button_text": 75, "value": 2000}


def block_problems(blocks: list[dict[str, Any]]) -> list[str]:
    """What Slack would reject in ``blocks`` (the documented limits, plus the ~12k total)."""
    problems = []
    if len(blocks) > LIMITS["blocks"]:
        problems.append(f"{len(blocks)} blocks")
    total = 0
    for block in blocks:
        kind = block.get("type")
        text = (block.get("text") or {}).get("text", "")
        total += len(text)
        if kind == "section" and len(text) > LIMITS["section"]:
            problems.append(f"section of {len(text)}")
        if kind == "header" and len(text) > LIMITS["header"]:
            problems.append(f"header of {len(text)}")
        if kind == "context" and len(block.get("elements", [])) > LIMITS["context"]:
            problems.append("context elements")
        for element in block.get("elements", []) + ([block["accessory"]] if "accessory" in block else []):
            total += len(element.get("text", "") if isinstance(element.get("text"), str) else "")
            if element.get("type") == "button" and _button_too_long(element):
                problems.append("button")
    if total > 12_000:
        problems.append(f"msg_blocks_too_long ({total})")
    return problems


def _button_too_long(button: dict[str, Any]) -> bool:
    return len(button["text"]["text"]) > LIMITS["button_text"] or len(button.get("value", "")) > LIMITS["value"]


@dataclass
class SlackStandIn:
    """Answers the Web API methods paperbot uses. ``calls`` holds (method, payload) of every request;
    ``accepted`` the chat.postMessage payloads Slack would have shown."""

    channel_interval: float = 0.0  # > 0: a second post to a channel sooner than this gets 429
    delay: float = 0.0  # seconds between accepting a message and answering (a slow Slack)
    forbidden: set[str] = field(default_factory=set)  # channels answering not_in_channel
    faults: dict[str, deque[tuple[int, dict[str, str], dict[str, Any]]]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)  # messages changed by chat.update, as they are after it
    deleted: list[dict[str, Any]] = field(default_factory=list)  # messages removed by chat.delete
    limited: int = 0  # how many posts got 429 for going faster than channel_interval
    admins: set[str] = field(default_factory=set)  # users.info says these are workspace admins
    history_scope: bool = True  # False: conversations.history answers missing_scope
    files_scope: bool = True  # False: files.getUploadURLExternal answers missing_scope
    im_scope: bool = True  # False: conversations.open answers missing_scope
    zones: dict[str, str] = field(default_factory=dict)  # users.info's tz for these users
    unreachable: set[str] = field(default_factory=set)  # users conversations.open refuses (user_disabled)
    uploads: list[dict[str, Any]] = field(default_factory=list)  # completed file uploads
    app_tokens: set[str] = field(default_factory=set)  # app-level tokens apps.connections.open accepts
    socket_url: str = ""  # the websocket URL it hands out (a SocketModeStandIn's)
    # Multi-workspace: bot token → its workspace. When set, every Web API call must carry one of them
    # (else invalid_auth, as Slack answers) and is recorded in `teams` with the workspace it acted in.
    workspaces: dict[str, str] = field(default_factory=dict)
    teams: list[tuple[str, str, str]] = field(default_factory=list)  # (method, workspace, channel or user)
    installs: dict[str, tuple[str, str]] = field(default_factory=dict)  # OAuth code → (team id, name); once each
    app_credentials: tuple[str, str] = ("", "")  # oauth.v2.access checks the client id and secret
    rotating: bool = False  # tokens expire (12 h) and come with refresh tokens
    violations: list[str] = field(default_factory=list)  # calls Slack's spec refuses (tests/specs/slack.py)
    scopes: frozenset[str] | None = None  # the bot token's scopes (None: all the manifest asks for); each method checks
    revoked: set[str] = field(default_factory=set)  # tokens answering token_revoked to every method
    # A commercially distributed app that is not on the Marketplace (Slack, May 2025): conversations.history
    # and .replies give at most 15 messages, once a minute (429, Retry-After 60, sooner).
    distributed: bool = False
    expect_violations: bool = False  # a test that sends refused calls on purpose reads `violations` itself

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.refresh: dict[str, str] = {}  # refresh token → workspace
        self._files: dict[str, dict[str, Any]] = {}
        self._last_post: dict[str, float] = {}
        self._last_read: dict[str, float] = {}  # a distributed app's last history read, by method
        self._ts = 1_700_000_000
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # users.info and other read methods take their arguments in the query
                query = {k: v[-1] for k, v in parse_qs(self.path.partition("?")[2]).items()}
                self.respond(standin.checked("GET", self.path, "", query, {}, self.headers))

            def do_POST(self) -> None:
                if self.path.startswith("/upload/"):  # step 2 of a file upload: the raw bytes
                    status = standin.receive_upload(self.path, self.rfile.read(int(self.headers.get("Content-Length", 0))))
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"OK")
                    return
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                kind = self.headers.get("Content-Type", "")
                if kind.startswith("application/json"):
                    payload = json.loads(raw or "{}")
                else:
                    payload = {k: v[-1] for k, v in parse_qs(raw).items()}
                query = {k: v[-1] for k, v in parse_qs(self.path.partition("?")[2]).items()}  # slack_sdk's `params`
                self.respond(standin.checked("POST", self.path, kind, query, payload, self.headers))

            def respond(self, payload: dict[str, Any]) -> None:
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                status, headers, body = standin.answer(self.path, payload, token)
                if standin.delay:
                    time.sleep(standin.delay)  # the message is already accepted: dying now duplicates it
                raw = isinstance(body, bytes)  # a fault may be a raw body (an HTML error page)
                data = body if raw else json.dumps(body).encode()
                self.send_response(status)
                granted = ",".join(sorted(standin.scopes if standin.scopes is not None else SCOPES))
                for key, value in (
                    ({} if raw else {"Content-Type": "application/json"}) | {"X-OAuth-Scopes": granted} | headers
                ).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def checked(
        self, verb: str, path: str, kind: str, query: dict[str, Any], body: dict[str, Any], headers: Any
    ) -> dict[str, Any]:
        """The arguments Slack would read from this request, after checking it against Slack's spec: a
        call the spec refuses is recorded in ``violations`` (the test fails on leaving the stand-in), and a
        JSON body sent to a method that takes none is ignored, as Slack ignores it."""
        method = path.split("?", 1)[0].rsplit("/", 1)[-1]
        if path.startswith("/api/") and method != "oauth.v2.access":  # OAuth's token exchange authenticates apart
            bearer = headers.get("Authorization", "").startswith("Bearer ")
            found = slack_spec.problems(verb, method, kind, query | body, bearer)
            with self._lock:
                self.violations.extend(found)
            spec = slack_spec.Method.named(method)
            if kind.startswith("application/json") and spec is not None and slack_spec.JSON not in spec.consumes:
                return query  # Slack reads no JSON body for this method
        return query | body

    def fail(self, method: str, *answers: tuple[int, dict[str, str], dict[str, Any]]) -> None:
        """Answer the next calls of ``method`` with ``answers`` (status, headers, body), then normally."""
        self.faults.setdefault(method, deque()).extend(answers)

    def answer(self, path: str, payload: dict[str, Any], token: str = "") -> tuple[int, dict[str, str], dict[str, Any]]:
        path = path.split("?", 1)[0]
        method = path.rsplit("/", 1)[-1]
        with self._lock:
            self.calls.append((method, payload))
            queue = self.faults.get(method)
            if queue:
                return queue.popleft()
            if path.startswith("/hooks/"):
                return 200, {}, {"ok": True}
            if method == "oauth.v2.access":
                return self._oauth_access(payload, token)
            refused, payload = self._gate(method, payload, token)
            if refused is not None:
                return refused
            if self.workspaces and method != "apps.connections.open":
                team = self.workspaces.get(token)
                if team is None:
                    return 200, {}, {"ok": False, "error": "invalid_auth"}
                self.teams.append((method, team, str(payload.get("channel") or payload.get("user") or "")))
                if method == "auth.test":
                    return 200, {}, {"ok": True, "user_id": f"UBOT{team}", "bot_id": f"B{team}", "team_id": team}
            answer = {
                "users.info": self._user,
                "auth.test": lambda p, t: (200, {}, {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1"}),
                "chat.postMessage": lambda p, t: self._post_message(p),
                "chat.update": lambda p, t: self._update_message(p),
                "chat.delete": lambda p, t: self._delete_message(p),
                "apps.connections.open": self._connections_open,
                "conversations.history": lambda p, t: self._history(p),
                "conversations.replies": lambda p, t: self._replies(p),
                "conversations.open": self._open_dm,
                "files.getUploadURLExternal": lambda p, t: self._upload_url(p),
                "files.completeUploadExternal": lambda p, t: self._complete_upload(p),
            }.get(method)
            return answer(payload, token) if answer else (200, {}, {"ok": True})

    def _gate(
        self, method: str, payload: dict[str, Any], token: str
    ) -> tuple[tuple[int, dict[str, str], dict[str, Any]] | None, dict[str, Any]]:
        """What Slack checks before a method runs: a revoked token, the method's scopes, a distributed app's
        history limits. Returns the refusal (or None) and the payload as Slack would read it."""
        if token in self.revoked:
            return (200, {}, {"ok": False, "error": "token_revoked"}), payload
        needed = slack_spec.scopes(method)
        if self.scopes is not None and needed and not self.scopes & set(needed):
            provided = ",".join(sorted(self.scopes))
            return (200, {}, {"ok": False, "error": "missing_scope", "needed": needed[0], "provided": provided}), payload
        if self.distributed and method in ("conversations.history", "conversations.replies"):
            now = time.monotonic()
            if now - self._last_read.get(method, -1e9) < 60:
                return (429, {"Retry-After": "60"}, {"ok": False, "error": "ratelimited"}), payload
            self._last_read[method] = now
            return None, payload | {"limit": min(15, int(payload.get("limit", 15)))}
        return None, payload

    def _oauth_access(self, payload: dict[str, Any], basic: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        # The app authenticates with its client id and secret (HTTP Basic); a code works once.
        client_id, secret = self.app_credentials
        if basic != "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode():
            return 200, {}, {"ok": False, "error": "invalid_client_id"}
        if payload.get("grant_type") == "refresh_token":
            team = self.refresh.pop(str(payload.get("refresh_token", "")), "")
            if not team:
                return 200, {}, {"ok": False, "error": "invalid_refresh_token"}
            return 200, {}, self.grant(team, "", rotated=True)
        found = self.installs.pop(str(payload.get("code", "")), None)
        if found is None:
            return 200, {}, {"ok": False, "error": "invalid_code"}
        return 200, {}, self.grant(*found)

    def grant(self, team: str, name: str, rotated: bool = False) -> dict[str, Any]:
        self._ts += 1
        token = f"xoxb-{team}-{self._ts}"
        self.workspaces[token] = team
        grant = {"ok": True, "access_token": token, "token_type": "bot", "scope": "chat:write,commands", "app_id": "A1"}
        grant |= {"bot_user_id": f"UBOT{team}", "team": {"id": team, "name": name}, "enterprise": None}
        grant |= {"is_enterprise_install": False, "authed_user": {"id": f"UINSTALL{team}"}}
        if self.rotating:
            refresh = f"xoxe-{team}-{self._ts}"
            self.refresh[refresh] = team
            grant |= {"refresh_token": refresh, "expires_in": 43200}
        return grant

    def _user(self, payload: dict[str, Any], token: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        user = payload.get("user", "")
        person = {"id": user, "is_admin": user in self.admins, "is_owner": False}
        if user in self.zones:
            person["tz"] = self.zones[user]
        return 200, {}, {"ok": True, "user": person}

    def _connections_open(self, payload: dict[str, Any], token: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        # Socket Mode: an app-level token (and only that) gets a websocket URL.
        if token.startswith("xoxb-"):
            return 200, {}, {"ok": False, "error": "not_allowed_token_type"}
        if token not in self.app_tokens or not self.socket_url:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        return 200, {}, {"ok": True, "url": self.socket_url}

    def _open_dm(self, payload: dict[str, Any], token: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        if not self.im_scope:
            return 200, {}, {"ok": False, "error": "missing_scope", "needed": "im:write"}
        if payload.get("users") in self.unreachable:
            return 200, {}, {"ok": False, "error": "user_disabled"}
        return 200, {}, {"ok": True, "channel": {"id": f"D{payload.get('users', '')}"}}

    def _post_message(self, payload: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        channel = payload.get("channel", "")
        if channel in self.forbidden:
            return 200, {}, {"ok": False, "error": "not_in_channel"}
        blocks = payload.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if block_problems(blocks) or not payload.get("text"):
            return 200, {}, {"ok": False, "error": "invalid_blocks", "problems": block_problems(blocks)}
        now = time.monotonic()
        if self.channel_interval and now - self._last_post.get(channel, -1e9) < self.channel_interval:
            self.limited += 1
            return 429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"}
        self._last_post[channel] = now
        self._ts += 1
        ts = f"{self._ts}.000100"
        self.accepted.append({**payload, "ts": ts, "_at": time.monotonic()})
        return 200, {}, {"ok": True, "channel": channel, "ts": ts}

    def _update_message(self, payload: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        # The same checks as a post; the message must exist (message_not_found otherwise).
        channel, ts = payload.get("channel", ""), payload.get("ts", "")
        message = next((m for m in self.accepted if m["channel"] == channel and m["ts"] == ts), None)
        if message is None:
            return 200, {}, {"ok": False, "error": "message_not_found"}
        blocks = payload.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if block_problems(blocks) or not payload.get("text"):
            return 200, {}, {"ok": False, "error": "invalid_blocks", "problems": block_problems(blocks)}
        message.update({k: v for k, v in payload.items() if k in ("text", "blocks", "metadata")})
        self.updated.append({**message})
        return 200, {}, {"ok": True, "channel": channel, "ts": ts, "text": payload.get("text", "")}

    def _delete_message(self, payload: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        message = next(
            (m for m in self.accepted if m["channel"] == payload.get("channel") and m["ts"] == payload.get("ts")), None
        )
        if message is None:
            return 200, {}, {"ok": False, "error": "message_not_found"}
        self.accepted.remove(message)
        self.deleted.append(message)
        return 200, {}, {"ok": True, "channel": message["channel"], "ts": message["ts"]}

    def _history(self, payload: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        # Newest first, at most `limit`; message metadata only when asked for (as Slack does).
        if not self.history_scope:
            return 200, {}, {"ok": False, "error": "missing_scope", "needed": "channels:history"}
        if not payload.get("channel"):
            return 200, {}, {"ok": False, "error": "channel_not_found"}
        if payload.get("channel") in self.forbidden:  # a channel the bot is not in
            return 200, {}, {"ok": False, "error": "not_in_channel"}
        channel, limit = payload.get("channel", ""), int(payload.get("limit", 100))
        mine = [m for m in reversed(self.accepted) if m["channel"] == channel and not m.get("thread_ts")][:limit]
        keep = ("ts", "text") + (("metadata",) if str(payload.get("include_all_metadata")).lower() in ("true", "1") else ())
        return 200, {}, {"ok": True, "messages": [{k: m[k] for k in keep if k in m} for m in mine], "has_more": False}

    def _replies(self, payload: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        # A message's thread, parent first; `ts` may name the parent or any reply in it.
        if not self.history_scope:
            return 200, {}, {"ok": False, "error": "missing_scope", "needed": "channels:history"}
        mine = [m for m in self.accepted if m["channel"] == payload.get("channel")]
        message = next((m for m in mine if m["ts"] == payload.get("ts")), None)
        if message is None:
            return 200, {}, {"ok": False, "error": "thread_not_found"}
        parent = message.get("thread_ts") or message["ts"]
        thread = [m for m in mine if m["ts"] == parent] + [m for m in mine if m.get("thread_ts") == parent]
        shown = [{"ts": m["ts"], "thread_ts": parent, "text": m.get("text", "")} for m in thread]
        return 200, {}, {"ok": True, "messages": shown[: int(payload.get("limit", 1000))], "has_more": False}

    def _upload_url(self, payload: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        if not self.files_scope:
            return 200, {}, {"ok": False, "error": "missing_scope", "needed": "files:write"}
        if not payload.get("filename") or int(payload.get("length") or 0) <= 0:
            return 200, {}, {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{len(self._files) + 1:08d}"
        self._files[file_id] = {"filename": payload["filename"], "length": int(payload["length"]), "content": None}
        return 200, {}, {"ok": True, "file_id": file_id, "upload_url": f"{self.url}/upload/{file_id}"}

    def receive_upload(self, path: str, data: bytes) -> int:
        """Step 2 of a file upload; the length must be the one announced in step 1."""
        with self._lock:
            file = self._files.get(path.rsplit("/", 1)[-1])
            if file is None or file["length"] != len(data):
                return 400
            file["content"] = data
            return 200

    def _complete_upload(self, payload: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        files = payload.get("files")
        listed = json.loads(files) if isinstance(files, str) else files or []
        done = []
        for item in listed:
            file = self._files.get(item.get("id", ""))
            if file is None or file["content"] is None:
                return 200, {}, {"ok": False, "error": "file_not_found"}
            upload = {**file, "title": item.get("title"), "channel": payload.get("channel_id")}
            self.uploads.append(upload | {"initial_comment": payload.get("initial_comment")})
            done.append({"id": item["id"], "title": item.get("title")})
        return 200, {}, {"ok": True, "files": done}

    def methods(self, name: str) -> list[dict[str, Any]]:
        """Payloads of every call to ``name``."""
        return [payload for method, payload in self.calls if method == name]

    def __enter__(self) -> SlackStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        import os  # TEMPORARY: exploration

        if os.environ.get("SPEC_LOG"):
            with open(os.environ["SPEC_LOG"], "a") as f:
                f.write("".join(v + "\n" for v in self.violations))
            return
        if self.violations and not self.expect_violations and exc[0] is None:
            raise AssertionError("calls Slack's spec refuses:\n" + "\n".join(dict.fromkeys(self.violations)))
