"""What people type after ``/papers``: the subcommand table (both grammars a platform may use), the
help texts made from it, and splitting typed text into a ``Command``."""

from __future__ import annotations

from dataclasses import dataclass

from bot.model import Command

QUERY_HELP = """Queries: words and "quoted phrases" (all must appear), OR, NOT or -word, ( ),
cat:cs.RO  author:"Yann LeCun"  org:nvidia  upvotes>=10  code:yes
like:2508.10000~0.6 (papers that close to that one in meaning; 0.5 when ~ is left out)
Example: {command}"vision-language" OR VLA -survey upvotes>=5"""


@dataclass(frozen=True, slots=True)
class Subcommand:
    """One ``/papers`` subcommand as people type it: free text after ``/papers``, or typed options (a
    platform whose ``grammar`` is "options", Discord), and what it does."""

    name: str
    text: str
    options: str
    does: str


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("search", "/papers <query>", "/papers search query:<query>", "recent papers matching the query, best first"),
    Subcommand("more", "/papers more", "/papers more", "the next results of your last query"),
    Subcommand(
        "top", "/papers top [today|week|month]", "/papers top period:<…>", "the most upvoted recent papers (default: week)"
    ),
    Subcommand(
        "subscribe",
        "/papers subscribe <query>",
        "/papers subscribe query:<query>",
        "post new papers matching the query in this channel",
    ),
    Subcommand(
        "unsubscribe",
        "/papers unsubscribe <query|n>",
        "/papers unsubscribe topic:<…>",
        "stop that (n: the number shown by /papers topics)",
    ),
    Subcommand("topics", "/papers topics", "/papers topics", "this channel's subscriptions"),
    Subcommand(
        "save",
        "/papers save <arXiv id>",
        "/papers save paper:<arXiv id>",
        "keep a paper in your list (or react with the save emoji, or press Save)",
    ),
    Subcommand("saved", "/papers saved", "/papers saved", "your saved papers, newest first"),
    Subcommand("unsave", "/papers unsave <arXiv id>", "/papers unsave paper:<arXiv id>", "remove a paper from your list"),
    Subcommand(
        "export",
        "/papers export [bibtex|markdown]",
        "/papers export form:<…>",
        "your saved papers as BibTeX (default) or Markdown, as a file",
    ),
    Subcommand("similar", "/papers similar <arXiv id>", "/papers similar paper:<arXiv id>", "recent papers most like that one"),
    Subcommand("foryou", "/papers foryou", "/papers foryou", "recent papers ranked for you, learned from what you saved"),
    Subcommand(
        "follow",
        "/papers follow <query|saved> [at HH:MM]",
        "/papers follow query:<query|saved> at:<HH:MM>",
        "a daily direct message of new papers matching it",
    ),
    Subcommand("following", "/papers following", "/papers following", "what you follow"),
    Subcommand("unfollow", "/papers unfollow <n>", "/papers unfollow number:<n>", "stop following number n"),
    Subcommand("help", "/papers help", "/papers help", "this text"),
)
NAMES = tuple(s.name for s in SUBCOMMANDS)


def usage(grammar: str) -> str:
    """The help text for a platform's ``grammar`` ("text" or "options"), from the table."""
    forms = [(s.options if grammar == "options" else s.text, s.does) for s in SUBCOMMANDS]
    width = max(len(form) for form, _ in forms) + 2
    example = "/papers search query:" if grammar == "options" else "/papers "
    return "".join(f"{form:<{width}}{does}\n" for form, does in forms) + "\n" + QUERY_HELP.format(command=example)


USAGE = usage("text")
OPTIONS_USAGE = usage("options")  # where commands take typed options (Discord's slash commands; ``Platform.grammar``)


def parse_command(text: str) -> Command:
    """``/papers subscribe cat:cs.CL`` → ``Command("subscribe", "cat:cs.CL")``; bare text is a search."""
    text = " ".join(text.split())
    if text.startswith("/"):
        text = text.partition(" ")[2]
    head, _, rest = text.partition(" ")
    if not text:
        return Command("help")
    if head.lower() in NAMES and head.lower() != "search":
        return Command(head.lower(), rest)
    return Command("search", text)
