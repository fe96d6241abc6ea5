"""Handlebars' syntax tree: the node types the parser builds and the compiler reads."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from relay.integrations.handlebars.lexer import Token


@dataclass(slots=True)
class Path:
    """A path: `@`-data or not, `../` depth, the parts after `this`, as written."""

    data: bool
    depth: int
    parts: list[str]
    original: str
    pos: int

    @property
    def scoped(self) -> bool:
        """Written with a leading `.`, `./`, `this`: never a helper or block parameter."""
        return re.search(r"^\.|this\b", self.original, re.ASCII) is not None

    @property
    def simple(self) -> bool:
        """One plain name: a helper's, a block parameter's or the context's."""
        return len(self.parts) == 1 and not self.scoped and not self.depth and not self.data


@dataclass(slots=True)
class Literal:
    """A string, number, boolean, null or undefined literal."""

    value: Any
    pos: int


@dataclass(slots=True)
class Call:
    """A name with its arguments: a mustache's, a block's or a subexpression's."""

    head: Path | Literal
    params: list[Path | Literal | Call]
    pos: int


@dataclass(slots=True)
class Content:
    """Literal text; whitespace control trims `value` and keeps `original`."""

    value: str
    original: str
    left_stripped: bool = False
    right_stripped: bool = False


@dataclass(slots=True)
class Comment:
    """A comment, kept for whitespace control."""

    strip: tuple[bool, bool]


@dataclass(slots=True)
class Mustache:
    """`{{call}}`, escaped or not."""

    call: Call
    escaped: bool
    strip: tuple[bool, bool]


@dataclass(slots=True)
class Program:
    """A list of statements; `chained` for the program an `{{else if}}` makes."""

    body: list[Content | Comment | Mustache | Block]
    block_params: list[str] | None = None
    chained: bool = False


@dataclass(slots=True)
class Block:
    """A block statement, after inversion: `program` runs on success, `inverse` else."""

    call: Call
    program: Program | None
    inverse: Program | None
    open_strip: tuple[bool, bool]
    inverse_strip: tuple[bool, bool]
    close_strip: tuple[bool, bool]
    inverted: bool = False
    block_params: list[str] | None = field(default=None)


@dataclass(slots=True)
class Open:
    """An opening tag: its call, block parameters and strip flags."""

    call: Call
    block_params: list[str] | None
    strip: tuple[bool, bool]


def strip_flags(open_text: str, close_text: str) -> tuple[bool, bool]:
    """Handlebars' stripFlags: `~` right after the opening braces, right before the closing."""
    return open_text[2:3] == "~", close_text[-3:-2] == "~"


def unquote(token: Token) -> str:
    """A string literal's value: quotes off, its escaped quotes unescaped."""
    quote_char = token.text[0]
    return token.text[1:-1].replace("\\" + quote_char, quote_char)


_BRACKETED: Final = re.compile("\\[[^\n\r\u2028\u2029]*\\]")


def segment(text: str) -> str:
    """A path segment: `[...]` literal segments lose their brackets (if on one line)."""
    if _BRACKETED.fullmatch(text):
        return text[1:-1]
    return text


Statement = Content | Comment | Mustache | Block
