"""Handlebars' whitespace control: standalone lines and `~`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from relay.integrations.handlebars.syntax import (
    Block,
    Comment,
    Content,
    Mustache,
    Program,
    Statement,
)
from relay.integrations.handlebars.values import WS

# Handlebars' WhitespaceControl, on the same tree: `~` trims whitespace next to a tag, and a
# block, `{{else}}` or comment tag alone on its line takes the line's whitespace with it.
_PREV_LINE: Final = re.compile(rf"\r?\n[{WS}]*\Z")
_PREV_LINE_ROOT: Final = re.compile(rf"(?:\A|\r?\n)[{WS}]*\Z")
_NEXT_LINE: Final = re.compile(rf"[{WS}]*?\r?\n")
_NEXT_LINE_ROOT: Final = re.compile(rf"[{WS}]*?(?:\r?\n|\Z)")
_LEADING_ALL: Final = re.compile(rf"\A[{WS}]+")
_LEADING_LINE: Final = re.compile(r"\A[ \t]*\r?\n?")
_TRAILING_ALL: Final = re.compile(rf"[{WS}]+\Z")
_TRAILING_LINE: Final = re.compile(r"[ \t]+\Z")


@dataclass(slots=True)
class _Strip:
    """What a statement asks of its neighbours: `~` trims and standalone candidacy."""

    open: bool
    close: bool
    open_standalone: bool = False
    close_standalone: bool = False
    inline_standalone: bool = False


def _prev_is_space(body: list[Statement], i: int | None = None, root: bool = False) -> bool:
    """Whether the statement before `i` (else the last) ends a line with only whitespace."""
    if i is None:
        i = len(body)
    if i - 1 < 0:
        return root
    prev = body[i - 1]
    if not isinstance(prev, Content):
        return False
    pattern = _PREV_LINE if i - 2 >= 0 or not root else _PREV_LINE_ROOT
    return pattern.search(prev.original) is not None


def _next_is_space(body: list[Statement], i: int | None = None, root: bool = False) -> bool:
    """Whether the statement after `i` (else the first) starts with whitespace to a newline."""
    if i is None:
        i = -1
    if i + 1 >= len(body):
        return root
    nxt = body[i + 1]
    if not isinstance(nxt, Content):
        return False
    pattern = _NEXT_LINE if i + 2 < len(body) or not root else _NEXT_LINE_ROOT
    return pattern.match(nxt.original) is not None


def _omit_right(body: list[Statement], i: int | None = None, multiple: bool = False) -> None:
    """Trims the start of the content after `i` (else the first): all whitespace or a line."""
    at = 0 if i is None else i + 1
    if at >= len(body):
        return
    current = body[at]
    if not isinstance(current, Content) or (not multiple and current.right_stripped):
        return
    before = current.value
    current.value = (_LEADING_ALL if multiple else _LEADING_LINE).sub("", before, count=1)
    current.right_stripped = current.value != before


def _omit_left(body: list[Statement], i: int | None = None, multiple: bool = False) -> None:
    """Trims the end of the content before `i` (else the last): all whitespace or spaces."""
    at = len(body) - 1 if i is None else i - 1
    if at < 0:
        return
    current = body[at]
    if not isinstance(current, Content) or (not multiple and current.left_stripped):
        return
    before = current.value
    current.value = (_TRAILING_ALL if multiple else _TRAILING_LINE).sub("", before, count=1)
    current.left_stripped = current.value != before


def strip_program(program: Program, root: bool = False) -> None:
    """Applies `~` and standalone-line rules to a program and everything in it."""
    body = program.body
    for i, current in enumerate(body):
        strip = _strip_of(current)
        if strip is None:
            continue
        prev_space, next_space = _prev_is_space(body, i, root), _next_is_space(body, i, root)
        if strip.close:
            _omit_right(body, i, True)
        if strip.open:
            _omit_left(body, i, True)
        if strip.inline_standalone and prev_space and next_space:
            _omit_right(body, i)
            _omit_left(body, i)
        if strip.open_standalone and prev_space and isinstance(current, Block):
            _omit_right(_first_program(current).body)
            _omit_left(body, i)
        if strip.close_standalone and next_space and isinstance(current, Block):
            _omit_right(body, i)
            _omit_left((current.inverse or _first_program(current)).body)


def _first_program(block: Block) -> Program:
    """A block's program, or its inverse when it has none (`{{^x}}` without `{{else}}`)."""
    program = block.program or block.inverse
    assert program is not None
    return program


def _strip_of(statement: Statement) -> _Strip | None:
    """What `statement` asks of its neighbours, stripping inside a block first."""
    if isinstance(statement, Content):
        return None
    if isinstance(statement, Mustache):
        return _Strip(*statement.strip)
    if isinstance(statement, Comment):
        return _Strip(*statement.strip, inline_standalone=True)
    return _strip_block(statement)


def _strip_block(block: Block) -> _Strip:
    """Handlebars' BlockStatement visit: strips inside, returns the block's candidacy."""
    for inner in (block.program, block.inverse):
        if inner is not None:
            strip_program(inner)
    program = _first_program(block)
    inverse = block.inverse if block.program is not None else None
    first_inverse = last_inverse = inverse
    if inverse is not None and inverse.chained:
        first_inverse = _chained_link(inverse).program
        while last_inverse is not None and last_inverse.chained:
            last_inverse = _chained_link(last_inverse).program
    strip = _Strip(
        block.open_strip[0],
        block.close_strip[1],
        open_standalone=_next_is_space(program.body),
        close_standalone=_prev_is_space((first_inverse or program).body),
    )
    if block.open_strip[1]:
        _omit_right(program.body, None, True)
    if inverse is not None:
        _strip_inverse(block, program, first_inverse, last_inverse)
    elif block.close_strip[0]:
        _omit_left(program.body, None, True)
    return strip


def _strip_inverse(
    block: Block, program: Program, first: Program | None, last: Program | None
) -> None:
    """The `~` and standalone rules around a block's `{{else}}`."""
    assert first is not None and last is not None
    if block.inverse_strip[0]:
        _omit_left(program.body, None, True)
    if block.inverse_strip[1]:
        _omit_right(first.body, None, True)
    if block.close_strip[0]:
        _omit_left(last.body, None, True)
    if _prev_is_space(program.body) and _next_is_space(first.body):
        _omit_left(program.body)
        _omit_right(first.body)


def _chained_link(program: Program) -> Block:
    """The block an `{{else name}}` program holds."""
    link = program.body[0]
    assert isinstance(link, Block)
    return link
