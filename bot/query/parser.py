"""Topic queries: the one parser, used by subscriptions and ``/papers <query>`` alike.

Grammar (operators in capitals; implicit AND between terms)::

    query   := or
    or      := and ("OR" and)*
    and     := unary ("AND"? unary)*
    unary   := ("NOT" | "-") unary | primary
    primary := "(" or ")" | "phrase in quotes" | field | word
    field   := cat:cs.RO | author:"Yann LeCun" | org:nvidia | code:yes|no | upvotes>=10 (> >= < <= =)
             | like:2508.10000~0.6 (papers that close to that one; ~0.5 when left out)

Words match whole words, case-insensitively, accents and simple plurals folded, hyphen and space
alike (``vision-language`` is the phrase ``vision language``), in the title, abstract or keywords.
A malformed query is a ``CommandError`` that says what is wrong and where. Every query is bounded
(``MAX_LENGTH`` characters, ``MAX_TERMS`` terms, ``MAX_DEPTH`` levels of parentheses and NOT), so
no query can exhaust the parser, the router or the search index.
"""

from __future__ import annotations

import re

from bot.errors import CommandError
from bot.ids import bare_arxiv_id
from bot.query.matcher import AllOf, AnyOf, Field, Node, Not, Query, Words, words
from bot.text import typed

FIELDS = ("cat", "author", "org", "code", "upvotes", "like")
LIKE_THRESHOLD = 0.5  # like:<id> without ~t: about as close as a paper's nearest neighbour of the same day (median 0.51)
MAX_LENGTH, MAX_TERMS, MAX_DEPTH, MAX_PHRASE_WORDS = 500, 20, 6, 12
_QUERY_TOKEN = re.compile(r'\s+|\(|\)|"[^"]*"?|[^\s()"]+(?:"[^"]*"?)?')
_COMPARISON = re.compile(r"(?P<name>[a-z]+)(?P<op>>=|<=|>|<|=|:)(?P<value>.*)", re.S)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = [(m.group(), m.start() + 1) for m in _QUERY_TOKEN.finditer(text) if not m.group().isspace()]
        self.i = 0
        self.depth = 0
        self.terms = 0

    def fail(self, message: str, position: int | None = None) -> CommandError:
        where = f" at position {position}" if position else ""
        return CommandError(f"{message}{where} in {self.text!r}")

    def peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, int]:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def parse(self) -> Node:
        if not self.tokens:
            raise CommandError("the query is empty; try a word such as: reasoning")
        node = self.parse_or()
        if self.peek() is not None:
            token, position = self.take()
            raise self.fail(f"unexpected {token!r}" if token != ")" else "a ')' without its '('", position)
        return node

    def parse_or(self) -> Node:
        nodes = [self.parse_and()]
        while self.peek() == "OR":
            _, position = self.take()
            if self.peek() in (None, ")", "OR"):
                raise self.fail("'OR' needs something after it", position)
            nodes.append(self.parse_and())
        return nodes[0] if len(nodes) == 1 else AnyOf(tuple(nodes))

    def parse_and(self) -> Node:
        nodes: list[Node] = []
        while self.peek() not in (None, ")", "OR"):
            if self.peek() == "AND":
                _, position = self.take()
                if not nodes or self.peek() in (None, ")", "OR", "AND"):
                    raise self.fail("'AND' needs something on both sides", position)
                continue
            nodes.append(self.parse_unary())
        if not nodes:
            token = self.peek()
            position = self.tokens[self.i][1] if token else len(self.text)
            raise self.fail("'OR' needs something before it" if token == "OR" else "empty parentheses", position)
        return nodes[0] if len(nodes) == 1 else AllOf(tuple(nodes))

    def parse_unary(self) -> Node:
        token, position = self.tokens[self.i]
        if token in ("NOT", "-"):
            self.take()
            if self.peek() in (None, ")", "OR"):
                raise self.fail(f"'{token}' needs something after it", position)
            return self.negated(position)
        if token.startswith("-"):
            self.tokens[self.i] = (token[1:], position + 1)
            return self.negated(position)
        return self.parse_primary()

    def negated(self, position: int) -> Node:
        self.enter(position)
        node = Not(self.parse_unary())
        self.depth -= 1
        return node

    def enter(self, position: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"the query nests parentheses and NOT more than {MAX_DEPTH} deep", position)

    def term(self, position: int) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise self.fail(f"the query has more than {MAX_TERMS} terms", position)

    def parse_primary(self) -> Node:
        token, position = self.take()
        if token == "(":
            self.enter(position)
            node = self.parse_or()
            if self.peek() != ")":
                raise self.fail("a '(' is never closed", position)
            self.take()
            self.depth -= 1
            return node
        self.term(position)
        if token.startswith('"'):
            return self.phrase(token, position)
        comparison = _COMPARISON.fullmatch(token)
        if comparison and comparison.group("name") in FIELDS:
            return self.field(comparison.group("name"), comparison.group("op"), comparison.group("value"), position)
        if comparison and comparison.group("op") == ":":
            raise self.fail(f"unknown field {comparison.group('name') + ':'!r} (fields: {', '.join(FIELDS)})", position)
        return self.phrase(token, position)

    def phrase(self, raw: str, position: int) -> Words:
        if raw.startswith('"') and (len(raw) == 1 or not raw.endswith('"')):
            raise self.fail("a quote is never closed", position)
        found = words(raw.strip('"'))
        if not found:
            raise self.fail(f"nothing to match in {raw!r}", position)
        if len(found) > MAX_PHRASE_WORDS:
            raise self.fail(f"a phrase of more than {MAX_PHRASE_WORDS} words", position)
        return Words(found)

    def field(self, name: str, op: str, value: str, position: int) -> Field:
        value = self.unquote(value, f"'{name}{op}' needs a value", position)
        if name == "upvotes":
            if op == ":":
                op = ">="
            if not value.isdigit():
                raise self.fail(f"'upvotes' needs a whole number, got {value!r}", position)
            return Field(name, op, value)
        if op != ":":
            raise self.fail(f"'{name}' takes ':' (like {name}:value), not {op!r}", position)
        if name == "like":
            return self.like(value, position)
        if name == "code" and value.lower() not in ("yes", "no"):
            raise self.fail(f"'code:' takes yes or no, got {value!r}", position)
        if name in ("code", "cat"):
            return Field(name, op, value.lower())
        tokens = words(value)
        if not tokens:
            raise self.fail(f"nothing to match in {value!r}", position)
        return Field(name, op, value, tokens)

    def like(self, value: str, position: int) -> Field:
        raw_id, _, raw_threshold = value.partition("~")
        paper_id = bare_arxiv_id(raw_id)
        if not paper_id:
            raise self.fail(f"'like:' takes an arXiv id (like:2508.10000~0.6), got {raw_id!r}", position)
        try:
            threshold = float(raw_threshold) if raw_threshold else LIKE_THRESHOLD
        except ValueError:
            threshold = -1.0
        if not 0.0 < threshold < 1.0:
            raise self.fail(f"'like:' takes a threshold between 0 and 1 after '~', got {raw_threshold!r}", position)
        return Field("like", ":", f"{paper_id}~{threshold:g}")

    def unquote(self, value: str, empty: str, position: int) -> str:
        if value.startswith('"'):
            if len(value) == 1 or not value.endswith('"'):
                raise self.fail("a quote is never closed", position)
            value = value[1:-1]
        if not value.strip():
            raise self.fail(empty, position)
        return value


def parse_query(text: str) -> Query:
    """Parse a topic query; a ``CommandError`` says what is wrong and where. Control and bidi characters
    never reach the query's text (it is stored as a subscription and shown back)."""
    text = typed(text)
    if len(text) > MAX_LENGTH:
        raise CommandError(f"the query is longer than {MAX_LENGTH} characters")
    return Query(text, _Parser(text).parse())
