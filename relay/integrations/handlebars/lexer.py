"""Handlebars' tokens: its lexer's rules inside `{{ }}`, and `\\{{` escapes in text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from relay.integrations.handlebars.errors import fail
from relay.integrations.handlebars.values import WS


@dataclass(slots=True)
class Token:
    """A token of Handlebars' lexer: its kind, text and offset."""

    kind: str
    text: str
    pos: int


# Handlebars' lexer rules inside {{ }}, in its order: the first that matches wins
_TAG_RULES: Final = [
    ("OPEN_SEXPR", r"\("),
    ("CLOSE_SEXPR", r"\)"),
    ("OPEN_RAW_BLOCK", r"\{\{\{\{"),
    ("CLOSE_RAW_BLOCK", r"\}\}\}\}"),
    ("OPEN_PARTIAL_BLOCK", r"\{\{~?#>"),
    ("OPEN_PARTIAL", r"\{\{~?>"),
    ("OPEN_BLOCK", r"\{\{~?#\*?"),
    ("OPEN_ENDBLOCK", r"\{\{~?/"),
    ("INVERSE", rf"\{{\{{~?\^[{WS}]*~?\}}\}}"),
    ("INVERSE", rf"\{{\{{~?[{WS}]*else[{WS}]*~?\}}\}}"),
    ("OPEN_INVERSE", r"\{\{~?\^"),
    ("OPEN_INVERSE_CHAIN", rf"\{{\{{~?[{WS}]*else(?![A-Za-z0-9_])"),
    ("OPEN_UNESCAPED", r"\{\{~?\{"),
    ("OPEN", r"\{\{~?&"),
    ("LONG_COMMENT", r"\{\{~?!--"),
    ("COMMENT", r"\{\{~?![\s\S]*?\}\}"),
    ("OPEN", r"\{\{~?\*?"),
    ("EQUALS", "="),
    ("ID", r"\.\."),
    ("ID", rf"\.(?=[=~}}{WS}/.)|])"),
    ("SEP", r"[/.]"),
    ("SPACE", rf"[{WS}]+"),
    ("CLOSE_UNESCAPED", r"\}~?\}\}"),
    ("CLOSE", r"~?\}\}"),
    ("STRING", r'"(?:\\"|[^"])*"'),
    ("STRING", r"'(?:\\'|[^'])*'"),
    ("DATA", "@"),
    ("BOOLEAN", rf"(?:true|false)(?=[~}}{WS})])"),
    ("UNDEFINED", rf"undefined(?=[~}}{WS})])"),
    ("NULL", rf"null(?=[~}}{WS})])"),
    ("NUMBER", rf"-?[0-9]+(?:\.[0-9]+)?(?=[~}}{WS})])"),
    ("OPEN_BLOCK_PARAMS", rf"as[{WS}]+\|"),
    ("CLOSE_BLOCK_PARAMS", r"\|"),
    ("ID", rf"[^{WS}!\"#%-,./;->@\[-\^`{{-~]+(?=[=~}}{WS}/.)|])"),
    ("ID", r"\[(?:\\\]|[^\]])*\]"),
    ("INVALID", r"[\s\S]"),
]
_TAG_RE: Final = re.compile("|".join(f"({pattern})" for _, pattern in _TAG_RULES))
_TAG_KINDS: Final = [kind for kind, _ in _TAG_RULES]
_LONG_COMMENT_RE: Final = re.compile(r"[\s\S]*?--~?\}\}")
# after `\{{`: literal text of at least two characters up to the next tag or escape
_ESCAPED_RE: Final = re.compile(r"[\s\S]{2,}?(?=\{\{|\\\{\{|\\\\\{\{|\Z)")
_POPS: Final = {"CLOSE", "CLOSE_UNESCAPED", "INVERSE", "COMMENT"}


def lex(source: str, name: str) -> list[Token]:
    """Handlebars' tokens of `source`, ending with EOF."""
    tokens: list[Token] = []
    pos, escaped = 0, False
    while pos < len(source):
        if escaped:
            match = _ESCAPED_RE.match(source, pos)
            assert match is not None  # `{{` is there: two characters at least
            tokens.append(Token("CONTENT", match.group(), pos))
            pos, escaped = match.end(), False
            continue
        tag = source.find("{{", pos)
        end = len(source) if tag < 0 else tag
        text = source[pos:end]
        if tag >= 0 and text.endswith("\\\\"):
            text = text[:-1]  # `\\{{`: one backslash, then a tag
        elif tag >= 0 and text.endswith("\\"):
            text, escaped = text[:-1], True  # `\{{`: the tag is text
        if text:
            tokens.append(Token("CONTENT", text, pos))
        pos = end
        if tag >= 0 and not escaped:
            pos = _lex_tag(source, name, pos, tokens)
    tokens.append(Token("EOF", "", len(source)))
    return tokens


def _lex_tag(source: str, name: str, pos: int, tokens: list[Token]) -> int:
    """Appends the tokens of the tag at `pos`; returns the offset after it."""
    while True:
        if pos >= len(source):
            raise fail(source, name, pos, "the tag is not closed with }}")
        match = _TAG_RE.match(source, pos)
        assert match is not None and match.lastindex is not None  # INVALID matches any char
        kind, text = _TAG_KINDS[match.lastindex - 1], match.group()
        if kind == "LONG_COMMENT":
            long = _LONG_COMMENT_RE.match(source, pos)
            if long is None:
                raise fail(source, name, pos, "the comment {{!-- is not closed with --}}")
            kind, text = "COMMENT", long.group()
        if kind == "OPEN_RAW_BLOCK":
            raise fail(source, name, pos, "raw blocks ({{{{raw}}}}) are not supported")
        if kind == "INVALID" and source.find("}}", pos) < 0:
            raise fail(source, name, pos, "the tag is not closed with }}")
        if kind == "INVALID":
            raise fail(source, name, pos, f"unexpected {text!r} in a tag")
        if kind != "SPACE":
            tokens.append(Token(kind, text, pos))
        pos += len(text)
        if kind in _POPS:
            return pos
