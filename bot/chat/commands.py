"""``/papers …``: the same grammar on every platform, answered from the store alone.

Adapters turn a slash command into ``(text, user, destination)`` and a reaction into a
``Reaction``; this module decides everything else and answers with a ``Reply``: a user's mistake
and a store outage become replies too, so a listener never sees an error.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from bot.cards import to_card
from bot.chat.digests import SAVED, known_zone, parse_at
from bot.chat.export import to_bibtex, to_markdown
from bot.chat.feed import Feed
from bot.chat.grammar import OPTIONS_USAGE, USAGE, parse_command
from bot.chat.workspaces import Workspaces
from bot.errors import CommandError, PaperbotError
from bot.ids import bare_arxiv_id
from bot.model import Attachment, Command, Destination, Following, Paper, Reaction, Reply, Saved, UserRef
from bot.platforms import SAVE_EMOJI, platform
from bot.ports import Coordination, Follows, Library, Papers, Subscriptions
from bot.query.index import PaperIndex
from bot.query.matcher import Query
from bot.query.parser import parse_query

log = logging.getLogger(__name__)

TOP_PERIODS = {"today": 1, "week": 7, "month": 30}  # days
MOST_FOLLOWS = 20
_AT = re.compile(r"\s+at\s+(\d{1,2}(?::\d{2})?)$", re.IGNORECASE)


MANAGERS = "people who manage this channel (Discord: Manage Channels; Slack: workspace admins and owners)"
OUTAGE = "paperbot could not answer just now (its store is unreachable); please try again shortly."
HELP_HINT = "\nType /papers help for the syntax."

R = TypeVar("R", Reply, Reply | None)


async def replying(work: Awaitable[R], hint: str = "") -> R | Reply:
    """``work``'s reply, or the reply that says what went wrong: a user's mistake (with ``hint``) or a
    store outage (never an error page or an HTTP 500; the outage is logged once)."""
    try:
        return await work
    except CommandError as exc:
        return Reply(f"{exc}{hint}", refused=True)
    except PaperbotError as exc:
        log.error("command failed", extra={"kv": {"problem": str(exc)}})
        return Reply(OUTAGE, refused=True)


def _disabled(topic: str) -> str:
    """`` (disabled: why)`` for a stored topic that no longer parses; empty for a good one."""
    try:
        parse_query(topic)
    except CommandError as exc:
        return f" (disabled: {str(exc).split(' at position')[0].split(' in ')[0]}; unsubscribe it)"
    return ""


Handler = Callable[[Command, UserRef, Destination], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class ChatStores:
    """What commands read and write, one port each."""

    papers: Papers
    subscriptions: Subscriptions
    library: Library
    coordination: Coordination
    follows: Follows | None = None  # readers' follows (the personal feed); None: follow commands say it is off


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """How commands answer (``[chat]``, ``[summary]`` and the channels' settings)."""

    save_emoji: Mapping[str, str] = field(default_factory=lambda: dict(SAVE_EMOJI))
    catch_all: frozenset[Destination] = frozenset()
    page_size: int = 5
    tldr_length: int = 280
    managers: str | frozenset[str] = "anyone"  # who may change a channel's subscriptions (chat.managers)
    dm_at: str = "08:00"


class CommandCore:
    """The ``Commands`` port: executes commands and reactions for one deployment."""

    def __init__(
        self,
        stores: ChatStores,
        index: PaperIndex,
        options: ChatOptions | None = None,
        *,
        feed: Feed | None = None,
        workspaces: Workspaces | None = None,
        timed: Callable[[str, str, float], None] | None = None,
    ) -> None:
        options = options or ChatOptions()
        self._workspaces = workspaces
        self._timed = timed  # (platform, command, seconds) of each answered command (bot.service.metrics)
        self._feed = feed
        self._follows = stores.follows
        self._dm_at = options.dm_at
        self._managers = options.managers
        self._coordination = stores.coordination
        self._papers = stores.papers
        self._subscriptions = stores.subscriptions
        self._library = stores.library
        self._index = index
        self._save_emoji = options.save_emoji
        self._catch_all = options.catch_all
        self._page_size = options.page_size
        self._tldr_length = options.tldr_length
        # Every subcommand of SUBCOMMANDS, by name (tests/unit/test_commands.py keeps the two in step).
        self.handlers: Mapping[str, Handler] = {
            "search": self._search,
            "more": self._more,
            "top": self._top,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "topics": self._topics,
            "save": self._save,
            "saved": self._saved,
            "unsave": self._unsave,
            "export": self._export,
            "similar": self._similar,
            "foryou": self._foryou,
            "follow": self._follow,
            "following": self._following,
            "unfollow": self._unfollow,
            "help": self._help,
        }

    async def handle(self, text: str, user: UserRef, where: Destination) -> Reply:
        """Answer one ``/papers`` command typed as text; a user's mistake becomes a reply saying what is wrong."""
        return await self.run(parse_command(text), user, where)

    async def run(self, command: Command, user: UserRef, where: Destination) -> Reply:
        """Answer one command already split by the platform (Discord's typed options): its argument is
        never read as another subcommand, so a search for "subscribe everything" is a search."""
        handler = self.handlers.get(command.name)
        if handler is None:
            return Reply(f"there is no /papers {command.name}{HELP_HINT}", refused=True)
        started = time.perf_counter()
        reply = await replying(handler(command, user, where), HELP_HINT)
        notice = await self._notice(user)
        if self._timed is not None:
            self._timed(user.platform, command.name, time.perf_counter() - started)
        return Reply(f"{notice}\n\n{reply.text}", reply.cards, file=reply.file, refused=reply.refused) if notice else reply

    async def _notice(self, user: UserRef) -> str:
        """Why the reader's digest could not reach them, once (empty when nothing went wrong, and when
        the store cannot say: the command's own answer says so)."""
        if self._follows is None:
            return ""
        try:
            return await self._follows.take_notice(user)
        except PaperbotError:
            return ""

    async def uninstalled(self, platform: str, workspace: str, channels: Sequence[str] = ()) -> None:
        """The app was removed from ``workspace`` (a Slack workspace, a Discord server with its
        ``channels``): forget everything of it."""
        if self._workspaces is not None and workspace:
            await self._workspaces.forget(platform, workspace, channels)

    async def channels(self, platform: str) -> list[str]:
        """Every channel of ``platform`` with subscriptions."""
        return sorted({d.channel for d in await self._subscriptions.everything() if d.platform == platform and not d.person})

    async def forget_channels(self, platform: str, channels: Sequence[str]) -> int:
        """Forget channels that no longer exist (or that the bot can no longer see)."""
        return await self._workspaces.forget_channels(platform, channels) if self._workspaces is not None else 0

    async def react(self, reaction: Reaction) -> Reply | None:
        """Save (or unsave) the paper behind a paperbot post; anything else is ignored (None)."""
        return await replying(self._react(reaction))

    async def _react(self, reaction: Reaction) -> Reply | None:
        emoji = reaction.emoji.strip(":").split("::", 1)[0]
        if emoji != self._save_emoji.get(reaction.post.destination.platform):
            return None
        paper_id = await self._papers.paper_for_post(reaction.post)
        if paper_id is None:
            return None
        return await (
            self._save_paper(reaction.user, paper_id) if reaction.added else self._unsave_paper(reaction.user, paper_id)
        )

    async def warm_up(self) -> None:
        """Load the query index now (a service does this at start) rather than on the first command."""
        try:
            await self._index.refresh()
        except PaperbotError as exc:
            log.warning("could not preload the query index; the first /papers will", extra={"kv": {"problem": str(exc)}})

    async def once(self, event_id: str) -> bool:
        """True the first time a platform delivers ``event_id``; its retries (and replays) get False.
        With the store unreachable it answers True: better to answer twice than not at all."""
        try:
            return await self._coordination.first_time(event_id)
        except PaperbotError:
            return True

    async def topics(self, where: Destination) -> list[str]:
        """The destination's subscriptions (for autocomplete)."""
        return await self._subscriptions.topics(where)

    async def saved(self, user: UserRef) -> list[Saved]:
        """``user``'s saved papers, newest first (for the Slack App Home)."""
        return await self._library.saved(user)

    async def save(self, user: UserRef, paper_id: str) -> Reply:
        """Keep a paper in ``user``'s list: what reactions, Save buttons and ``/papers save`` all call."""
        return await replying(self._save_paper(user, paper_id))

    async def unsave(self, user: UserRef, paper_id: str) -> Reply:
        """Remove a paper from ``user``'s list."""
        return await replying(self._unsave_paper(user, paper_id))

    async def _save_paper(self, user: UserRef, paper_id: str) -> Reply:
        paper = await self._paper(paper_id)
        if paper is None:
            raise CommandError(f"paperbot has not seen {paper_id} in the last days")
        added = await self._library.save(user, paper)
        return Reply(f"Saved “{paper.title}”." if added else f"“{paper.title}” was already in your saved papers.")

    async def _unsave_paper(self, user: UserRef, paper_id: str) -> Reply:
        if not await self._library.unsave(user, paper_id):
            raise CommandError(f"{paper_id} is not in your saved papers")
        return Reply(f"Removed {paper_id} from your saved papers.")

    # ------------------------------------------------------------------------------- commands

    async def _help(self, command: Command, user: UserRef, where: Destination) -> Reply:
        return Reply(OPTIONS_USAGE if platform(where.platform).grammar == "options" else USAGE)

    async def _resolved(self, text: str) -> Query:
        """The query ``text``, its ``like:`` terms decided by the feed."""
        query = parse_query(text)
        if self._feed is not None:
            return await self._feed.resolve(query)
        return query

    async def _search(self, command: Command, user: UserRef, where: Destination, page: int = 0) -> Reply:
        query = await self._resolved(command.argument)
        await self._index.refresh()
        ids, total, exact = await self._index.find(query, self._page_size, page * self._page_size)
        await self._library.remember_search(user, query.text, page)
        if not total:
            return Reply(f"No paper of the last {len(self._index)} cached matches “{query.text}”.")
        about = "" if exact else "about "
        if not ids:
            return Reply(f"No more papers match “{query.text}” ({about}{total:,} in all).")
        papers = {p.id: p for p in await self._papers.papers(ids)}
        cards = tuple(to_card(papers[i], tldr_limit=self._tldr_length) for i in ids if i in papers)
        first = page * self._page_size + 1
        more = " · /papers more for the next" if first + len(ids) - 1 < total else ""
        matches = "1 paper matches" if total == 1 and exact else f"{about}{total:,} papers match"
        return Reply(f"{matches} “{query.text}” (showing {first}–{first + len(ids) - 1}{more})", cards)

    async def _top(self, command: Command, user: UserRef, where: Destination) -> Reply:
        period = (command.argument or "week").strip().lower()
        if period not in TOP_PERIODS:
            raise CommandError(f"top of today, week or month, not {command.argument!r}")
        await self._index.refresh()
        found = self._index.top(time.time() - TOP_PERIODS[period] * 86400, self._page_size)
        if not found.ids:
            return Reply(f"No paper of the last {period} is cached yet.")
        papers = {p.id: p for p in await self._papers.papers(found.ids)}
        cards = tuple(to_card(papers[i], tldr_limit=self._tldr_length) for i in found.ids if i in papers)
        label = "today" if period == "today" else f"this {period}"
        return Reply(f"The most upvoted of {found.total:,} papers {label}:", cards)

    async def _more(self, command: Command, user: UserRef, where: Destination) -> Reply:
        last = await self._library.last_search(user)
        if last is None:
            raise CommandError("there is no recent search to continue; try /papers <query>")
        query, page = last
        return await self._search(Command("search", query), user, where, page + 1)

    def _may_manage(self, user: UserRef) -> bool:
        if user.platform == "console" or self._managers == "anyone":  # the terminal is the operator
            return True
        if self._managers == "managers":
            return user.manager
        return user.key in self._managers or user.user_id in self._managers

    def _check_manager(self, user: UserRef) -> None:
        if not self._may_manage(user):
            who = "the people listed in chat.managers" if isinstance(self._managers, frozenset) else MANAGERS
            raise CommandError(f"only {who} can change this channel's subscriptions; /papers topics shows them")

    async def _subscribe(self, command: Command, user: UserRef, where: Destination) -> Reply:
        self._check_manager(user)
        if not command.argument:
            raise CommandError("subscribe to what? For example: /papers subscribe reasoning OR cat:cs.CL")
        query = await self._resolved(command.argument)
        added = await self._subscriptions.subscribe(where, query.text)
        await self._index.refresh()
        try:
            found = await self._index.tally(query)
            recent = f"{found.total:,}" if found.exact else f"About {found.total:,}"
        except CommandError:  # routing new papers is cheap; counting the cache for this one is not
            recent = "Many"
        if not added:
            return Reply(f"This channel is already subscribed to “{query.text}”.")
        log.info("subscribed", extra={"kv": {"destination": where.key, "query": query.text, "user": user.key}})
        return Reply(f"Subscribed this channel to “{query.text}”. {recent} recent papers match it; new ones will be posted here.")

    async def _unsubscribe(self, command: Command, user: UserRef, where: Destination) -> Reply:
        self._check_manager(user)
        topics = await self._subscriptions.topics(where)
        if command.argument.isdigit() and 1 <= int(command.argument) <= len(topics):
            text = topics[int(command.argument) - 1]
        elif command.argument.isdigit():
            raise CommandError(f"there is no subscription number {command.argument}; /papers topics lists {len(topics)}")
        else:
            text = parse_query(command.argument).text
        if not await self._subscriptions.unsubscribe(where, text):
            raise CommandError(f"this channel is not subscribed to “{text}”; /papers topics lists its subscriptions")
        return Reply(f"Unsubscribed this channel from “{text}”.")

    async def _topics(self, command: Command, user: UserRef, where: Destination) -> Reply:
        topics = await self._subscriptions.topics(where)
        if not topics:
            if where in self._catch_all:
                return Reply("This channel has no topics, so it gets every new paper.")
            return Reply("This channel has no topics.")
        lines = "\n".join(f"{n}. {topic}{_disabled(topic)}" for n, topic in enumerate(topics, start=1))
        return Reply(f"This channel's topics:\n{lines}")

    async def _save(self, command: Command, user: UserRef, where: Destination) -> Reply:
        return await self._save_paper(user, self._paper_id(command.argument))

    async def _unsave(self, command: Command, user: UserRef, where: Destination) -> Reply:
        return await self._unsave_paper(user, self._paper_id(command.argument))

    async def _saved(self, command: Command, user: UserRef, where: Destination) -> Reply:
        saved = await self._library.saved(user)
        if not saved:
            return Reply("You have no saved papers yet. React with the save emoji on a paper, or /papers save <arXiv id>.")
        lines = [f"{n}. {s.paper.title} — {s.paper.id} (saved {s.saved_at:%Y-%m-%d})" for n, s in enumerate(saved, start=1)]
        return Reply(f"Your saved papers ({len(saved)}), newest first:\n" + "\n".join(lines))

    async def _export(self, command: Command, user: UserRef, where: Destination) -> Reply:
        form = (command.argument or "bibtex").lower()
        if form not in ("bibtex", "markdown"):
            raise CommandError(f"export as bibtex or markdown, not {command.argument!r}")
        papers = [s.paper for s in await self._library.saved(user)]
        if not papers:
            return Reply("You have no saved papers to export.")
        name, content = ("saved-papers.bib", to_bibtex(papers)) if form == "bibtex" else ("saved-papers.md", to_markdown(papers))
        kind = "BibTeX" if form == "bibtex" else "Markdown"
        return Reply(f"Your {len(papers)} saved papers as {kind}: {name}", file=Attachment(name, content, len(papers)))

    def _personal(self) -> tuple[Feed, Follows]:
        if self._feed is None or self._follows is None:
            raise CommandError("the personal feed is not available here")
        return self._feed, self._follows

    async def _similar(self, command: Command, user: UserRef, where: Destination) -> Reply:
        feed, _ = self._personal()
        paper_id = self._paper_id(command.argument)
        paper = await self._paper(paper_id)
        if paper is None:
            raise CommandError(f"paperbot has not seen {paper_id} in the last days")
        picks = await feed.similar(paper, self._page_size)
        if not picks:
            return Reply(f"No other cached paper to compare with “{paper.title}” yet.")
        papers = {p.id: p for p in await self._papers.papers([p.paper_id for p in picks])}
        cards = tuple(
            to_card(papers[p.paper_id], (f"similarity {p.score:.2f}",), self._tldr_length) for p in picks if p.paper_id in papers
        )
        return Reply(f"Recent papers most like “{paper.title}”:", cards)

    async def _foryou(self, command: Command, user: UserRef, where: Destination) -> Reply:
        feed, _ = self._personal()
        picks = await feed.for_you(user, self._page_size)
        papers = {p.id: p for p in await self._papers.papers([p.paper_id for p in picks])}
        cards = tuple(
            to_card(papers[p.paper_id], (f"like your saved: {p.because}",), self._tldr_length)
            for p in picks
            if p.paper_id in papers
        )
        if not cards:
            return Reply("No recent paper to rank for you yet.")
        return Reply("Recent papers for you, learned from what you saved:", cards)

    async def _follow(self, command: Command, user: UserRef, where: Destination) -> Reply:
        """``follow <query|saved> [at HH:MM]``; a platform's typed ``at`` option comes as ``typed_at``
        (then the text is taken whole)."""
        _, follows = self._personal()
        typed_at = command.at or None  # a platform's typed option: the text is then taken whole
        at_match = _AT.search(command.argument) if typed_at is None else None
        text = command.argument[: at_match.start()].strip() if at_match else command.argument.strip()
        at_text = typed_at if typed_at is not None else at_match.group(1) if at_match else None
        if not text:
            raise CommandError("follow what? For example: /papers follow diffusion cat:cs.CV at 08:00, or /papers follow saved")
        query = SAVED if text.lower() == SAVED else parse_query(text).text
        current = await follows.following(user) or Following(user, (), self._dm_at, "UTC")
        at = parse_at(at_text).strftime("%H:%M") if at_text else current.at
        zone = known_zone(user.timezone) or current.timezone
        if query in current.queries and at == current.at:
            return Reply(f"You already follow “{query}”; /papers following lists what you follow.")
        if query not in current.queries and len(current.queries) >= MOST_FOLLOWS:
            raise CommandError(f"you follow {MOST_FOLLOWS} things already; /papers unfollow one first")
        queries = current.queries if query in current.queries else (*current.queries, query)
        await follows.keep(Following(user, queries, at, zone))
        what = "papers like the ones you save" if query == SAVED else f"new papers matching “{query}”"
        return Reply(f"Following {what}. Your digest arrives by direct message daily at {at} ({zone}).")

    async def _following(self, command: Command, user: UserRef, where: Destination) -> Reply:
        _, follows = self._personal()
        current = await follows.following(user)
        if current is None:
            return Reply("You follow nothing yet. /papers follow <query> (or saved) sends you a daily digest.")
        lines = "\n".join(f"{n}. {q}" for n, q in enumerate(current.queries, start=1))
        return Reply(f"You follow (daily digest at {current.at}, {current.timezone}):\n{lines}")

    async def _unfollow(self, command: Command, user: UserRef, where: Destination) -> Reply:
        _, follows = self._personal()
        current = await follows.following(user)
        queries = current.queries if current is not None else ()
        if not command.argument.strip().isdigit() or not 1 <= int(command.argument) <= len(queries):
            raise CommandError(f"unfollow a number from /papers following (you follow {len(queries)})")
        assert current is not None
        gone = queries[int(command.argument) - 1]
        await follows.keep(Following(user, tuple(q for q in queries if q != gone), current.at, current.timezone))
        return Reply(f"Stopped following “{gone}”.")

    # -------------------------------------------------------------------------------- helpers

    @staticmethod
    def _paper_id(argument: str) -> str:
        paper_id = bare_arxiv_id(argument.strip())
        if not paper_id:
            raise CommandError(f"{argument.strip() or 'nothing'!r} is not an arXiv id (like 2602.23229)")
        return paper_id

    async def _paper(self, paper_id: str) -> Paper | None:
        # The cache forgets after its period; a paper someone saved stays in the library forever.
        return await self._papers.paper(paper_id) or await self._library.paper(paper_id)
