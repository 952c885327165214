"""Value types shared by every part of paperbot. Frozen, no I/O, no behaviour beyond conversions."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any

# What paperbot keeps of a paper, at most: enough for any real paper, bounded for a hostile feed.
LIMITS = {"title": 1000, "abstract": 20_000, "ai_summary": 2000, "organization": 200, "author": 200, "authors": 1000}
LIMITS |= {"keyword": 100, "keywords": 50, "categories": 20}


@dataclass(frozen=True, slots=True)
class Links:
    """Where to read a paper. Every URL is an ``https`` URL or empty."""

    hf: str = ""
    abstract: str = ""
    pdf: str = ""
    code: str = ""
    project: str = ""


@dataclass(frozen=True, slots=True)
class Paper:
    """One paper, normalized: bare arXiv id, clean text, UTC dates, and which sources reported it."""

    id: str
    title: str
    abstract: str
    authors: tuple[str, ...]
    published: datetime
    links: Links
    sources: frozenset[str]
    categories: tuple[str, ...] = ()
    ai_summary: str = ""
    keywords: tuple[str, ...] = ()
    organization: str = ""
    upvotes: int | None = None
    github_stars: int | None = None
    num_comments: int | None = None
    thumbnail: str = ""
    featured_on: datetime | None = None  # when it was put on HF Daily Papers

    @classmethod
    def merge(cls, reports: Sequence[Paper]) -> Paper:
        """One paper from several sources' reports of it: each field from the first report, in that
        field's ``PRECEDENCE``, that has a value; the earliest publication, the most upvotes, every source.
        Between sources the order of ``reports`` does not matter; among reports of one source, the
        earlier wins."""
        if not reports:
            raise ValueError("nothing to merge")
        if len({r.id for r in reports}) > 1:
            raise ValueError(f"cannot merge {', '.join(sorted({r.id for r in reports}))}")
        if len(reports) == 1:
            return reports[0]

        def first(path: str) -> Any:
            value = attrgetter(path)
            order = PRECEDENCE.get(path, PRECEDENCE["*"])
            ranked = sorted(reports, key=lambda r: min((_rank(order, s) for s in r.sources), default=(len(order), "")))
            return next((v for r in ranked if (v := value(r)) not in (None, "", ())), value(ranked[0]))

        links = Links(**{f.name: first(f"links.{f.name}") for f in dataclasses.fields(Links)})
        chosen = {f.name: first(f.name) for f in dataclasses.fields(cls) if f.name not in _COMBINED}
        return cls(
            **chosen,
            links=links,
            sources=frozenset().union(*(r.sources for r in reports)),
            published=min(r.published for r in reports),
            upvotes=max((r.upvotes for r in reports if r.upvotes is not None), default=None),
        )

    def updated_by(self, fresh: Paper) -> Paper:
        """This cached paper with what a newer report of it says about its social life: upvotes, code,
        project page, AI summary, keywords, organization, stars, comments (what it does not say stays)."""
        if _social(fresh) == _social(self) and fresh.sources <= self.sources:  # the common case: nothing new
            return self
        links = dataclasses.replace(
            self.links, code=fresh.links.code or self.links.code, project=fresh.links.project or self.links.project
        )
        return dataclasses.replace(
            self,
            links=links,
            upvotes=fresh.upvotes if fresh.upvotes is not None else self.upvotes,
            github_stars=fresh.github_stars if fresh.github_stars is not None else self.github_stars,
            num_comments=fresh.num_comments if fresh.num_comments is not None else self.num_comments,
            ai_summary=fresh.ai_summary or self.ai_summary,
            keywords=fresh.keywords or self.keywords,
            organization=fresh.organization or self.organization,
            featured_on=self.featured_on or fresh.featured_on,
            sources=self.sources | fresh.sources,
        )

    def bounded(self) -> Paper:
        """This paper with every text and list cut to ``LIMITS`` (the same paper when already within them)."""
        cut: dict[str, Any] = {
            "title": self.title[: LIMITS["title"]],
            "abstract": self.abstract[: LIMITS["abstract"]],
            "ai_summary": self.ai_summary[: LIMITS["ai_summary"]],
            "organization": self.organization[: LIMITS["organization"]],
            "authors": tuple(a[: LIMITS["author"]] for a in self.authors[: LIMITS["authors"]]),
            "keywords": tuple(k[: LIMITS["keyword"]] for k in self.keywords[: LIMITS["keywords"]]),
            "categories": self.categories[: LIMITS["categories"]],
        }
        changed = {name: value for name, value in cut.items() if value != getattr(self, name)}
        return dataclasses.replace(self, **changed) if changed else self

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict; ``Paper.from_json`` reverses it exactly."""
        # A shallow copy: dataclasses.asdict deep-copies every value and was the whole cost of a commit.
        data = {name: getattr(self, name) for name in _PAPER_FIELDS}
        data["links"] = {name: getattr(self.links, name) for name in _LINK_FIELDS}
        data["published"] = self.published.isoformat()
        data["featured_on"] = self.featured_on.isoformat() if self.featured_on else None
        data["sources"] = sorted(self.sources)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Paper:
        """Rebuild a paper from ``to_json`` output."""
        return cls(
            **{
                **data,
                "authors": tuple(data["authors"]),
                "categories": tuple(data.get("categories", ())),
                "keywords": tuple(data.get("keywords", ())),
                "links": Links(**data["links"]),
                "sources": frozenset(data["sources"]),
                "published": datetime.fromisoformat(data["published"]),
                "featured_on": datetime.fromisoformat(data["featured_on"]) if data.get("featured_on") else None,
            }
        )


def _social(paper: Paper) -> tuple[Any, ...]:
    """What ``updated_by`` takes from a newer report."""
    return (
        paper.upvotes,
        paper.github_stars,
        paper.num_comments,
        paper.ai_summary,
        paper.keywords,
        paper.organization,
        paper.links.code,
        paper.links.project,
    )


_PAPER_FIELDS = tuple(f.name for f in dataclasses.fields(Paper))
_LINK_FIELDS = tuple(f.name for f in dataclasses.fields(Links))


# Which source's report of a paper wins, field by field (a field not named follows "*"): the first
# source in the list whose report has a value; sources not listed come after, in name order. Hugging
# Face curates titles, summaries and its social fields; arXiv's own categories are the reference.
PRECEDENCE: dict[str, tuple[str, ...]] = {
    "*": ("huggingface", "arxiv"),
    "categories": ("arxiv", "huggingface"),
}
_COMBINED = {"links", "sources", "published", "upvotes"}  # not chosen from one report: combined from all


def upvotes(count: int) -> str:
    """``▲ 7 upvotes``: the count in words too, so a screen reader says what the triangle means."""
    return f"▲ {count} upvote{'' if count == 1 else 's'}"


def _rank(order: tuple[str, ...], source: str) -> tuple[int, str]:
    return (order.index(source), "") if source in order else (len(order), source)


@dataclass(frozen=True, slots=True)
class Destination:
    """A room to post in: a platform and that platform's channel id; ``workspace`` names the Slack
    workspace whose installation posts there (multi-workspace mode; empty with one ``SLACK_BOT_TOKEN``)."""

    platform: str
    channel: str
    workspace: str = ""

    @property
    def key(self) -> str:
        """The stable string used in store keys and logs, e.g. ``slack:C0123`` or ``slack:T042/C0123``."""
        where = f"{self.workspace}/{self.channel}" if self.workspace else self.channel
        return f"{self.platform}:{where}"

    @property
    def person(self) -> str:
        """For a person's direct messages (channel ``@<user id>``), that user id; else empty."""
        return self.channel[1:] if self.channel.startswith("@") else ""

    @classmethod
    def parse(cls, key: str) -> Destination:
        """Inverse of ``key``."""
        platform, _, channel = key.partition(":")
        workspace, slash, rest = channel.partition("/")
        return cls(platform, rest, workspace) if slash and platform == "slack" else cls(platform, channel)


@dataclass(frozen=True, slots=True)
class Backlog:
    """The outbox at a glance: deliveries owed, the oldest one's age (seconds; 0 when none) and dead letters."""

    depth: int
    oldest_seconds: float
    dead: int


@dataclass(frozen=True, slots=True)
class Channel:
    """A configured destination with its routing and noise rules."""

    destination: Destination
    topics: tuple[str, ...] = ()  # seeded into the subscriptions once; chat can change them later
    mode: str = "each"  # "each": one post per paper; "digest": one message per delivery pass
    catch_all: bool = True  # with no topics, get every paper (False: get nothing)
    daily_cap: int = 0  # most papers posted per UTC day; 0 = no cap
    min_upvotes: int = 0  # papers with fewer Hugging Face upvotes are not routed here
    digest_size: int = 5  # papers in the digest message itself; the rest go in its thread
    top_digest: str = ""  # "mon 09:00": a weekly recap of the most upvoted papers then ("": none)
    timezone: str = "UTC"  # the IANA time zone top_digest is in


@dataclass(frozen=True, slots=True)
class Delivery:
    """One paper owed to one destination, and why it matched there. With ``edit`` (a message id), the
    paper is already there: the delivery brings that message up to date and never posts a new one.
    With ``recap``, it is one digest of those papers (``paper_id`` is the first): a weekly recap, or a
    reader's direct-message digest; its ``why`` is one line for every card or one per paper."""

    destination: Destination
    paper_id: str
    why: tuple[str, ...] = ()
    edit: str = ""
    recap: tuple[str, ...] = ()  # a recap of these papers, posted as one digest whatever the channel's mode
    title: str = ""  # the recap's heading (default: the weekly recap's)


@dataclass(frozen=True, slots=True)
class Card:
    """A platform-neutral summary of a paper; each adapter renders it in its own format."""

    paper_id: str
    title: str
    url: str
    authors: tuple[str, ...]
    byline: str
    tldr: str
    organization: str = ""
    date: str = ""
    upvotes: int | None = None
    links: tuple[tuple[str, str], ...] = ()  # (label, https URL)
    keywords: tuple[str, ...] = ()
    why: tuple[str, ...] = ()
    thumbnail: str = ""
    sources: tuple[str, ...] = field(default=())

    @property
    def credit(self) -> str:
        """The byline, with the author count when it ends in "et al."."""
        return self.byline + (f" ({len(self.authors)} authors)" if len(self.authors) > 3 else "")

    @property
    def facts(self) -> tuple[str, ...]:
        """Organization, date, upvotes and why it matched: the card's one line of small print."""
        facts = (
            self.organization,
            self.date,
            upvotes(self.upvotes) if self.upvotes is not None else "",
            "matched: " + ", ".join(self.why) if self.why else "",
        )
        return tuple(f for f in facts if f)


@dataclass(frozen=True, slots=True)
class UserRef:
    """A person on a platform. ``manager``: the platform says they may manage the channel they are
    in (Discord: Manage Channels there; Slack: a workspace admin or owner); not part of identity."""

    platform: str
    user_id: str
    manager: bool = field(default=False, compare=False)
    timezone: str = field(default="", compare=False)  # IANA name, where the platform says it (Slack users.info)
    workspace: str = field(default="", compare=False)  # the Slack workspace they wrote from (multi-workspace mode)

    @property
    def key(self) -> str:
        """The stable string used in store keys, e.g. ``slack:U0123``."""
        return f"{self.platform}:{self.user_id}"


@dataclass(frozen=True, slots=True)
class Following:
    """What a reader follows (queries, or ``saved`` for their own model) and when their daily
    direct-message digest goes out (``at`` in ``timezone``)."""

    user: UserRef
    queries: tuple[str, ...] = ()
    at: str = "08:00"
    timezone: str = "UTC"

    @property
    def inbox(self) -> Destination:
        """Where the digest goes: the reader's direct messages."""
        return Destination(self.user.platform, "@" + self.user.user_id, self.user.workspace)


@dataclass(frozen=True, slots=True)
class PostRef:
    """What an adapter posted: where, and the platform's message id (Slack ts, Discord message id)."""

    destination: Destination
    message_id: str


@dataclass(frozen=True, slots=True)
class Reaction:
    """Someone added or removed an emoji on a message; ``emoji`` is the platform's spelling."""

    post: PostRef
    user: UserRef
    emoji: str
    added: bool


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A queued delivery as read from the outbox."""

    entry_id: str
    delivery: Delivery


@dataclass(frozen=True, slots=True)
class Saved:
    """A paper in someone's list, and when they saved it."""

    paper: Paper
    saved_at: datetime


@dataclass(frozen=True, slots=True)
class Command:
    """A ``/papers`` command: a subcommand name (``search`` for a bare query) and its argument;
    ``at``: the time a platform's typed option gave for ``follow`` (typed text is never re-parsed)."""

    name: str
    argument: str = ""
    at: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that goes with a reply (an export): its name, its text, and how many entries it holds."""

    filename: str
    content: str
    entries: int


@dataclass(frozen=True, slots=True)
class Reply:
    """The core's answer to a command, addressed to the asking user (ephemeral where possible)."""

    text: str
    cards: tuple[Card, ...] = ()
    ephemeral: bool = True
    file: Attachment | None = None
    refused: bool = False  # the command was not carried out (a mistake, or the store away): `paperbot ask` exits 1


@dataclass(frozen=True, slots=True)
class Check:
    """One line of ``paperbot doctor``'s checklist: what was checked, how it went (``ok``, ``warn`` or
    ``fail``), what was found, and for anything short of ok what to do about it."""

    what: str
    level: str
    detail: str
    fix: str = ""
