"""Handlebars' grammar: tokens to a syntax tree, with its nesting bounded."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from relay.integrations.handlebars.bounds import MAX_NESTING
from relay.integrations.handlebars.errors import TemplateError, fail
from relay.integrations.handlebars.lexer import Token, lex
from relay.integrations.handlebars.syntax import (
    Block,
    Call,
    Comment,
    Content,
    Literal,
    Mustache,
    Open,
    Path,
    Program,
    segment,
    strip_flags,
    unquote,
)
from relay.integrations.handlebars.values import UNDEFINED, scalar_text

_PARAM_STARTS: Final = {"ID", "DATA", "STRING", "NUMBER", "BOOLEAN", "UNDEFINED", "NULL"}
_PROGRAM_ENDS: Final = {"EOF", "OPEN_ENDBLOCK", "INVERSE", "OPEN_INVERSE_CHAIN"}
_UNSUPPORTED_TAGS: Final = {
    "OPEN_PARTIAL": "partials ({{> name}}) are not supported",
    "OPEN_PARTIAL_BLOCK": "partial blocks ({{#> name}}) are not supported",
}


@dataclass(slots=True)
class _InverseChain:
    """What follows a block's program: `{{else}}` and a program, or an `{{else x}}` chain."""

    strip: tuple[bool, bool]
    program: Program
    chained: bool


class Parser:
    """Handlebars' grammar over the tokens of one template, with its nesting bounded."""

    def __init__(self, source: str, name: str) -> None:
        self.source, self.name = source, name
        self.tokens = lex(source, name)
        self.at = 0
        self.depth = 0

    def fail(self, token: Token, what: str) -> TemplateError:
        """A TemplateError at `token`."""
        return fail(self.source, self.name, token.pos, what)

    def peek(self, ahead: int = 0) -> Token:
        """The token `ahead` places on, without taking it."""
        return self.tokens[min(self.at + ahead, len(self.tokens) - 1)]

    def take(self, kind: str, what: str) -> Token:
        """The next token, which must be of `kind` (described as `what`)."""
        token = self.peek()
        if token.kind != kind:
            found = repr(token.text) if token.text else "the end of the template"
            raise self.fail(token, f"expected {what}, found {found}")
        self.at += 1
        return token

    def nest(self, token: Token) -> None:
        """Enters a block or subexpression; TemplateError past the nesting bound."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(token, f"blocks and subexpressions nest deeper than {MAX_NESTING}")

    def parse(self) -> Program:
        """The whole template."""
        program = self.program()
        token = self.peek()
        if token.kind == "OPEN_ENDBLOCK":
            raise self.fail(token, "{{/...}} closes no open block")
        if token.kind != "EOF":
            raise self.fail(token, f"{token.text!r} is outside any block")
        return program

    def program(self) -> Program:
        """Statements up to a block's `{{else}}` or close, or the end."""
        body: list[Content | Comment | Mustache | Block] = []
        while self.peek().kind not in _PROGRAM_ENDS:
            body.append(self.statement())
        return Program(body)

    def statement(self) -> Content | Comment | Mustache | Block:
        """One content, comment, mustache or block."""
        token = self.peek()
        self.at += 1
        if token.kind == "CONTENT":
            return Content(token.text, token.text)
        if token.kind == "COMMENT":
            return Comment(strip_flags(token.text, token.text))
        if "*" in token.text and token.kind in ("OPEN", "OPEN_BLOCK"):
            raise self.fail(token, "decorators ({{* x}}) are not supported")
        if token.kind in ("OPEN", "OPEN_UNESCAPED"):
            return self.mustache(token)
        if token.kind in ("OPEN_BLOCK", "OPEN_INVERSE"):
            return self.block(token)
        raise self.fail(token, _UNSUPPORTED_TAGS.get(token.kind, f"unexpected {token.text!r}"))

    def mustache(self, opening: Token) -> Mustache:
        """`{{call}}`, `{{{call}}}` or `{{& call}}`."""
        call = self.call(opening.pos)
        if opening.kind == "OPEN_UNESCAPED":
            closing = self.take("CLOSE_UNESCAPED", "'}}}'")
        else:
            closing = self.take("CLOSE", "'}}'")
        escaped = opening.text[2:].lstrip("~")[:1] not in ("{", "&")
        return Mustache(call, escaped, strip_flags(opening.text, closing.text))

    def block(self, token: Token) -> Block:
        """`{{#call}}...{{/name}}` or `{{^call}}...{{/name}}`, with any `{{else}}`."""
        self.nest(token)
        opening = self.opening(token)
        program = self.program()
        chain = None
        following = self.peek().kind
        if following == "INVERSE" or (
            following == "OPEN_INVERSE_CHAIN" and token.kind != "OPEN_INVERSE"
        ):
            chain = self.inverse_chain()
        close_strip = self.closing(opening)
        self.depth -= 1
        return self.prepare(opening, program, chain, close_strip, token.kind == "OPEN_INVERSE")

    def opening(self, token: Token) -> Open:
        """The rest of an opening tag: call, block parameters, `}}`."""
        call = self.call(token.pos)
        params = None
        if self.peek().kind == "OPEN_BLOCK_PARAMS":
            self.at += 1
            params = [self.take("ID", "a block parameter name").text]
            while self.peek().kind == "ID":
                params.append(self.take("ID", "a name").text)
            self.take("CLOSE_BLOCK_PARAMS", "'|'")
        closing = self.take("CLOSE", "'}}'")
        return Open(call, params, strip_flags(token.text, closing.text))

    def closing(self, opening: Open) -> tuple[bool, bool]:
        """`{{/name}}`, which must name the block it closes."""
        token = self.take("OPEN_ENDBLOCK", f"{{{{/{_original(opening.call.head)}}}}}")
        name = self.helper_name()
        closing = self.take("CLOSE", "'}}'")
        if _closing_key(name) != _closing_key(opening.call.head):
            opened = _original(opening.call.head)
            raise self.fail(token, f"{{{{/{_original(name)}}}}} does not close {{{{#{opened}}}}}")
        return strip_flags(token.text, closing.text)

    def inverse_chain(self) -> _InverseChain:
        """`{{else}}` and a program, or `{{else name ...}}` and a program and more."""
        token = self.peek()
        self.at += 1
        if token.kind == "INVERSE":
            return _InverseChain(strip_flags(token.text, token.text), self.program(), False)
        self.nest(token)
        opening = self.opening(token)
        program = self.program()
        rest = None
        if self.peek().kind in ("INVERSE", "OPEN_INVERSE_CHAIN"):
            rest = self.inverse_chain()
        close_strip = rest.strip if rest is not None else (False, False)
        inner = self.prepare(opening, program, rest, close_strip, False)
        self.depth -= 1
        return _InverseChain(opening.strip, Program([inner], chained=True), True)

    @staticmethod
    def prepare(
        opening: Open,
        program: Program,
        chain: _InverseChain | None,
        close_strip: tuple[bool, bool],
        inverted: bool,
    ) -> Block:
        """Handlebars' prepareBlock, including how it hands strip flags down a chain."""
        program.block_params = opening.block_params
        inverse, inverse_strip = None, (False, False)
        if chain is not None:
            if chain.chained:  # as Handlebars does: the next link's close is this close
                link = chain.program.body[0]
                assert isinstance(link, Block)
                link.close_strip = close_strip
            inverse, inverse_strip = chain.program, chain.strip
        main: Program | None = program
        if inverted:
            main, inverse = inverse, program
        return Block(
            opening.call, main, inverse, opening.strip, inverse_strip, close_strip,
            inverted, opening.block_params,
        )  # fmt: skip

    def call(self, pos: int) -> Call:
        """A name and its arguments; hash arguments are refused."""
        head = self.helper_name()
        params: list[Path | Literal | Call] = []
        while True:
            token = self.peek()
            if token.kind == "ID" and self.peek(1).kind == "EQUALS":
                raise self.fail(token, f"hash arguments ({token.text}=...) are not supported")
            if token.kind == "OPEN_SEXPR":
                params.append(self.subexpression())
            elif token.kind in _PARAM_STARTS:
                params.append(self.helper_name())
            else:
                return Call(head, params, pos)

    def subexpression(self) -> Call:
        """`(name args...)`."""
        token = self.take("OPEN_SEXPR", "'('")
        self.nest(token)
        call = self.call(token.pos)
        self.take("CLOSE_SEXPR", "')'")
        self.depth -= 1
        return call

    def helper_name(self) -> Path | Literal:
        """A path, `@`-path or literal."""
        token = self.peek()
        self.at += 1
        kind = token.kind
        if kind == "ID":
            return self.path(token, data=False)
        if kind == "DATA":
            return self.path(self.take("ID", "a name after '@'"), data=True)
        if kind == "STRING":
            return Literal(unquote(token), token.pos)
        if kind == "NUMBER":
            return Literal(float(token.text), token.pos)
        if kind in ("BOOLEAN", "UNDEFINED", "NULL"):
            literal = {"true": True, "false": False, "null": None}.get(token.text, UNDEFINED)
            return Literal(literal, token.pos)
        found = repr(token.text) if token.text else "the end of the template"
        raise self.fail(token, f"expected a name or a value, found {found}")

    def path(self, first: Token, *, data: bool) -> Path:
        """Handlebars' preparePath over `first` and the segments after it."""
        segments = [(first, "")]
        while self.peek().kind == "SEP":
            separator = self.take("SEP", "'.'").text
            segments.append((self.take("ID", f"a name after {separator!r}"), separator))
        original, depth = "@" if data else "", 0
        parts: list[str] = []
        for token, separator in segments:
            text = _unescape_segment(token.text)
            part = segment(text)
            original += separator + part
            if part in ("..", ".", "this") and part == text:
                if parts:
                    raise self.fail(first, f"invalid path {original!r}: {part!r} inside a path")
                depth += part == ".."
            else:
                parts.append(part)
        return Path(data, depth, parts, original, first.pos)


def _unescape_segment(text: str) -> str:
    """The lexer's unescaping of `\\]` and `\\\\` inside a `[...]` segment."""
    if text.startswith("["):
        return re.sub(r"\\([\\\]])", r"\1", text)
    return text


def _original(name: Path | Literal) -> str:
    """A block's name as written, for messages."""
    if isinstance(name, Path):
        return name.original
    return scalar_text(name.value)


def _closing_key(name: Path | Literal) -> tuple[Any, ...]:
    """What Handlebars compares to match `{{/name}}` with its block: `original`."""
    if isinstance(name, Path):
        return ("text", name.original)
    if isinstance(name.value, str):
        return ("text", name.value)
    return ("value", type(name.value).__name__, name.value)
