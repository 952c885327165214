"""Untrusted text from feeds: cleaning (whitespace, control characters, simple LaTeX), timestamps, and cutting to fit."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

# Control characters, zero-width and bidi controls (they can spoof terminals and chat), the BOM and
# word joiner, tag characters, and lone surrogates (legal in JSON, unencodable in UTF-8).
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufeff\ufff9-\ufffb\ud800-\udfff\U000e0000-\U000e007f]"
)
# Of those, the invisible ones (zero-width, bidi controls, tags): in what a person typed they are dropped,
# not turned into a space, so "ro<U+202E>bots" stays the one word it looks like.
_INVISIBLE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]")
_SPACE = re.compile(r"\s+")
_LATEX_COMMAND = re.compile(r"\\(?:mathrm|mathbf|mathit|mathcal|mathbb|text|textbf|textit|emph|operatorname)\s*\{([^{}]*)\}")
_LATEX_SYMBOLS = {
    r"\pm": "±",
    r"\times": "×",
    r"\leq": "≤",
    r"\geq": "≥",
    r"\le": "≤",
    r"\ge": "≥",
    r"\approx": "≈",
    r"\sim": "~",
    r"\infty": "∞",
    r"\alpha": "α",
    r"\beta": "β",
    r"\gamma": "γ",
    r"\delta": "δ",
    r"\epsilon": "ε",
    r"\varepsilon": "ε",
    r"\lambda": "λ",
    r"\mu": "μ",
    r"\sigma": "σ",
    r"\theta": "θ",
    r"\pi": "π",
    r"\rightarrow": "→",
    r"\to": "→",
    r"\cdot": "·",
    r"\%": "%",
    r"\&": "&",
    r"\_": "_",
    r"\$": "$",
}
_LATEX_SYMBOL = re.compile("|".join(re.escape(k) + r"(?![A-Za-z])" for k in sorted(_LATEX_SYMBOLS, key=len, reverse=True)))
_MATH = re.compile(r"\$\$?([^$]+?)\$\$?")
_LEFTOVER_COMMAND = re.compile(r"\\[A-Za-z]+\s*")


def clean(text: str | None) -> str:
    """Collapse whitespace and drop control and bidi-override characters (they can spoof terminals and chat)."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def typed(text: str) -> str:
    """What a person typed (a query, a subscription) as plain text: invisible characters dropped, other
    controls made spaces, whitespace collapsed. Stored and echoed back, it can spoof nothing."""
    return clean(_INVISIBLE.sub("", unicodedata.normalize("NFC", text)))


def delatex(text: str) -> str:
    """Turn inline LaTeX into readable text: ``$\\alpha \\leq 0.5$`` becomes ``α ≤ 0.5``."""

    def math(match: re.Match[str]) -> str:
        inner = _LATEX_COMMAND.sub(r"\1", match.group(1))
        inner = _LATEX_SYMBOL.sub(lambda m: _LATEX_SYMBOLS[m.group(0)], inner)
        inner = _LEFTOVER_COMMAND.sub("", inner)
        return inner.replace("{", "").replace("}", "").replace("^", "").replace("_", "")

    text = _MATH.sub(math, text)
    text = _LATEX_COMMAND.sub(r"\1", text)
    text = _LATEX_SYMBOL.sub(lambda m: _LATEX_SYMBOLS[m.group(0)], text)
    return clean(text)


def https_url(raw: object, max_length: int = 2000) -> str:
    """``raw`` if it is a plain absolute https URL, else empty: feed links must not smuggle markup or schemes."""
    if not isinstance(raw, str):
        return ""
    url = raw.strip()
    if len(url) > max_length or not url.lower().startswith("https://") or len(url) <= len("https://"):
        return ""
    if not url.isascii() or any(ch.isspace() or ch in '<>"|`' or ord(ch) < 32 for ch in url):
        return ""
    return url


EARLIEST = datetime(1991, 1, 1, tzinfo=UTC)  # arXiv's first year: nothing older is a new paper


def parse_time(raw: object) -> datetime | None:
    """An ISO-8601 timestamp as an aware UTC datetime; None for missing, unparseable or impossible values
    (before 1991, or more than two days ahead)."""
    if not isinstance(raw, str) or not raw or len(raw) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return parsed if EARLIEST <= parsed <= datetime.now(UTC) + timedelta(days=2) else None


def shorten(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters at a word boundary, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:-—") + "…"


def fit_escaped(text: str, limit: int, escape: Callable[[str], str]) -> str:
    """``text`` shortened at a word boundary so that, once escaped, it fits in ``limit`` characters
    (escaping lengthens text, so the cut is made before escaping and tightened until it fits)."""
    budget = limit
    while True:
        escaped = escape(shorten(text, budget))
        if len(escaped) <= limit:
            return escaped
        budget -= len(escaped) - limit
