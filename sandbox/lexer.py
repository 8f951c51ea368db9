"""Tokens and a token cursor shared by the sandbox's JQL and WIQL subsets.

Each language gives its own regex of named groups (`str`, `op`, `word`, ...), how to unquote a
group, and its service's error messages; the scanning loop and the cursor are the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tok:
    kind: str
    """The regex group that matched (`str`, `op`, `word`, ...)."""
    text: str
    pos: int


def tokenize(
    text: str,
    pattern: re.Pattern[str],
    unquote: Mapping[str, Callable[[str], str]],
    unexpected: Callable[[int], Exception],
) -> list[Tok]:
    """Split `text` into tokens; `unexpected(pos)` is raised where no group matches."""
    out = []
    pos = 0
    while pos < len(text):
        m = pattern.match(text, pos)
        if not m or m.end() == pos:
            raise unexpected(pos)
        kind = m.lastgroup or "word"
        raw = m.group(kind)
        clean = unquote.get(kind)
        out.append(Tok(kind, clean(raw) if clean else raw, m.start(kind)))
        pos = m.end()
    return out


class TokenCursor:
    """Walks a token list for a recursive-descent parser."""

    def __init__(self, toks: list[Tok], incomplete: Callable[[], Exception]):
        self.toks = toks
        self.k = 0
        self._incomplete = incomplete

    def peek(self, offset: int = 0) -> Tok | None:
        k = self.k + offset
        return self.toks[k] if k < len(self.toks) else None

    def word(self, *words: str) -> bool:
        """Whether the next token is one of these keywords (case-insensitive)."""
        t = self.peek()
        return t is not None and t.kind == "word" and t.text.lower() in words

    def take(self) -> Tok:
        t = self.peek()
        if t is None:
            raise self._incomplete()
        self.k += 1
        return t
