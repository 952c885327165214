"""Cleaning untrusted text from feeds: whitespace, control characters, simple LaTeX."""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
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
    if any(ch.isspace() or ch in '<>"|`' or ord(ch) < 32 for ch in url):
        return ""
    return url
