"""Small stand-in servers on 127.0.0.1 for Hugging Face and arXiv, with injectable faults."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

Response = tuple[int, dict[str, str], bytes | Iterable[bytes]]  # chunks are sent as they come
Handler = Callable[[str, dict[str, str]], Response]


@dataclass
class StandIn:
    """An HTTP server whose answers come from ``handler(path, query)``, unless a queued fault comes first.

    ``faults[path]`` is a queue of responses served, one per request, before the handler answers
    that path again. Every request is recorded as (path, query).
    """

    handler: Handler
    faults: dict[str, deque[Response]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        standin = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                standin.requests.append((parts.path, query))
                queue = standin.faults.get(parts.path)
                status, headers, body = queue.popleft() if queue else standin.handler(parts.path, query)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if isinstance(body, bytes):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for chunk in [body] if isinstance(body, bytes) else body:  # chunks: a server that trickles
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except OSError:
                    return  # the client gave up (a deadline, a size cap)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def fail(self, path: str, *responses: Response) -> None:
        """Serve ``responses`` for the next requests to ``path``, then behave normally again."""
        self.faults.setdefault(path, deque()).extend(responses)

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_response(data: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(data).encode()


def text_response(
    text: str, status: int = 200, content_type: str = "text/plain", headers: dict[str, str] | None = None
) -> Response:
    return status, {"Content-Type": content_type, **(headers or {})}, text.encode()


class HuggingFaceStandIn:
    """Serves ``days[date] = [items]`` as /api/daily_papers (paged) and /papers/date/<date> pages,
    each answer ``delay`` seconds late (a slow Hugging Face)."""

    def __init__(self, days: dict[str, list[dict]], delay: float = 0.0) -> None:
        self.days = days
        self.delay = delay

    def __call__(self, path: str, query: dict[str, str]) -> Response:
        if self.delay:
            time.sleep(self.delay)
        if path == "/api/daily_papers":
            items = self.days.get(query.get("date", ""), [])
            page, limit = int(query.get("p", 0)), int(query.get("limit", 50))
            return json_response(items[page * limit : (page + 1) * limit])
        if path.startswith("/papers/date/"):
            props = {"dailyPapers": self.days.get(path.rsplit("/", 1)[-1], [])}
            div = f'<div data-target="DailyPapers" data-props="{escape(json.dumps(props), quote=True)}"></div>'
            html = f"<html><body>{div}</body></html>"
            return text_response(html, content_type="text/html")
        return json_response({"error": "Not Found"}, 404)


@dataclass
class ArxivEntry:
    """What the arXiv stand-in needs to write one Atom entry."""

    id: str
    title: str
    published: datetime
    summary: str = "An abstract."
    authors: tuple[str, ...] = ("A. Author",)
    categories: tuple[str, ...] = ("cs.CL",)
    version: int = 1


def atom_feed(entries: list[ArxivEntry], total: int | None = None) -> str:
    """A feed in arXiv's post-2025-11 format (namespaces on <feed>, https links, http ids)."""
    out = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        '<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom" '
        'xmlns="http://www.w3.org/2005/Atom">',
        f"<opensearch:totalResults>{len(entries) if total is None else total}</opensearch:totalResults>",
    ]
    for e in entries:
        stamp = e.published.strftime("%Y-%m-%dT%H:%M:%SZ")
        out += [
            "<entry>",
            f"<id>http://arxiv.org/abs/{e.id}v{e.version}</id><title>{escape(e.title)}</title><updated>{stamp}</updated>",
            f'<link href="https://arxiv.org/abs/{e.id}v{e.version}" rel="alternate" type="text/html"/>',
            f"<summary>{escape(e.summary)}</summary>",
            *(f'<category term="{c}" scheme="http://arxiv.org/schemas/atom"/>' for c in e.categories),
            f'<published>{stamp}</published><arxiv:primary_category term="{e.categories[0]}"/>',
            *(f"<author><name>{escape(a)}</name></author>" for a in e.authors),
            "</entry>",
        ]
    out.append("</feed>")
    return "\n".join(out)


class ArxivStandIn:
    """Serves ``entries`` newest first as /api/query, honouring start and max_results."""

    def __init__(self, entries: list[ArxivEntry]) -> None:
        self.entries = entries

    def __call__(self, path: str, query: dict[str, str]) -> Response:
        if path != "/api/query":
            return text_response("not found", 404)
        ordered = sorted(self.entries, key=lambda e: e.published, reverse=True)
        start, size = int(query.get("start", 0)), int(query.get("max_results", 10))
        return text_response(atom_feed(ordered[start : start + size], len(ordered)), content_type="application/atom+xml")
