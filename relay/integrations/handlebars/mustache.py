"""Mustache (mustache.js 4.2): its scanner, standalone lines, context-stack lookup and
render."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from relay.integrations.handlebars.bounds import MAX_NESTING, Run, run_nodes
from relay.integrations.handlebars.errors import RenderError, fail
from relay.integrations.handlebars.values import (
    UNDEFINED,
    WS,
    WS_CHARS,
    escape_mustache,
    has_property,
    is_nullish,
    js_string,
    property_of,
    string_property,
    truthy,
)

_WS_INLINE: Final = WS.replace("\n", "")
_M_OPEN: Final = re.compile(rf"\{{\{{[{WS}]*")
_M_TYPE: Final = re.compile(r"[#^/>{&=!]")
_M_SPACE: Final = re.compile(rf"[{WS}]*")
_M_CLOSE: Final = re.compile(rf"[{WS}]*\}}\}}")
_M_CLOSE_CURLY: Final = re.compile(rf"[{WS}]*\}}\}}\}}")
_M_CURLY: Final = re.compile(rf"[{WS}]*\}}")
_M_TEXT: Final = re.compile(rf"\n|[{_WS_INLINE}]+|[^{WS}]+")

_MToken = tuple[str, str, int]  # (type, text or name, offset): "text", "name", "&", "#", ...
_MStack = tuple[Any, Any]  # (view, parent link or None)
_MNode = Callable[[_MStack, Run], None]


def _skip(pattern: re.Pattern[str], source: str, pos: int) -> int:
    """mustache.js's Scanner.scan: the offset after `pattern` matched at `pos`, if it does."""
    match = pattern.match(source, pos)
    return pos if match is None else match.end()


def _scan_until(source: str, pos: int, pattern: re.Pattern[str]) -> tuple[str, int]:
    """mustache.js's Scanner.scanUntil: the text before `pattern` (or all), and where it stops."""
    match = pattern.search(source, pos)
    end = len(source) if match is None else match.start()
    return source[pos:end], end


class _MustacheLines:
    """mustache.js's parseTemplate: tokens, with standalone lines' whitespace removed."""

    def __init__(self, source: str, name: str) -> None:
        self.source, self.name = source, name
        self.tokens: list[_MToken | None] = []
        self.spaces: list[int] = []  # whitespace tokens on the current line
        self.has_tag = False
        self.non_space = False

    def end_line(self) -> None:
        """At a newline (or the end): a line of only tags and whitespace loses the whitespace."""
        if self.has_tag and not self.non_space:
            for index in self.spaces:
                self.tokens[index] = None
        self.spaces.clear()
        self.has_tag = self.non_space = False

    def text(self, start: int, end: int) -> None:
        """Text between tags, a line at a time."""
        for piece in _M_TEXT.finditer(self.source, start, end):
            text = piece.group()
            if text[0] in WS_CHARS:
                self.spaces.append(len(self.tokens))
            else:
                self.non_space = True
            self.tokens.append(("text", text, piece.start()))
            if text == "\n":
                self.end_line()

    def scan(self) -> list[_MToken | None]:
        """All the tokens of the template."""
        pos, source = 0, self.source
        while pos < len(source):
            opening = _M_OPEN.search(source, pos)
            self.text(pos, len(source) if opening is None else opening.start())
            if opening is None:
                break
            pos = self.tag(opening.start(), opening.end())
        self.end_line()
        return self.tokens

    def tag(self, start: int, pos: int) -> int:
        """The tag opened at `start`; returns the offset after it."""
        self.has_tag = True
        kind_match = _M_TYPE.match(self.source, pos)
        kind = kind_match.group() if kind_match else "name"
        pos = _skip(_M_SPACE, self.source, pos + (1 if kind_match else 0))
        if kind == "{":
            value, pos = _scan_until(self.source, pos, _M_CLOSE_CURLY)
            pos = _skip(_M_CURLY, self.source, pos)
            pos = _scan_until(self.source, pos, _M_CLOSE)[1]
            kind = "&"
        else:
            value, pos = _scan_until(self.source, pos, _M_CLOSE)
        closing = _M_CLOSE.match(self.source, pos)
        if closing is None:
            raise fail(self.source, self.name, start, "the tag is not closed with }}")
        if kind in (">", "="):
            what = "partials ({{> name}})" if kind == ">" else "set delimiters ({{=<% %>=}})"
            raise fail(self.source, self.name, start, f"{what} are not supported")
        if kind in ("name", "&"):
            self.non_space = True
        self.tokens.append((kind, value, start))
        return closing.end()


@dataclass(slots=True)
class _MSection:
    """A section or inverted section and what it holds."""

    kind: str
    name: str
    pos: int
    children: list[_MToken | _MSection] = field(default_factory=list)


def mustache_tree(source: str, name: str) -> list[_MToken | _MSection]:
    """mustache.js's nestTokens: sections hold their tokens; names must match."""
    root: list[_MToken | _MSection] = []
    open_sections: list[_MSection] = []
    current = root
    for token in _MustacheLines(source, name).scan():
        if token is None or token[0] == "!":
            continue
        kind, value, pos = token
        if kind in ("#", "^"):
            if len(open_sections) >= MAX_NESTING:
                raise fail(source, name, pos, f"sections nest deeper than {MAX_NESTING}")
            section = _MSection(kind, value, pos)
            current.append(section)
            open_sections.append(section)
            current = section.children
        elif kind == "/":
            if not open_sections:
                raise fail(source, name, pos, f"{{{{/{value}}}}} closes no open section")
            opened = open_sections.pop()
            if opened.name != value:
                raise fail(
                    source, name, pos, f"{{{{/{value}}}}} does not close {{{{#{opened.name}}}}}"
                )
            current = open_sections[-1].children if open_sections else root
        else:
            current.append(token)
    if open_sections:
        opened = open_sections[-1]
        raise fail(source, name, opened.pos, f"the section {opened.name!r} is not closed")
    return root


def _primitive_has(value: Any, key: str) -> bool:
    """mustache.js's primitiveHasOwnProperty: a string's length or index."""
    return isinstance(value, str) and string_property(value, key) is not UNDEFINED


def _mustache_lookup(name: str) -> Callable[[_MStack], Any]:
    """mustache.js's Context.lookup: up the context stack to the first view that has it."""
    if name == ".":
        return lambda stack: stack[0]
    if name.find(".") > 0:
        return _mustache_dotted(name.split("."))

    def lookup(stack: Any) -> Any:
        while stack is not None:
            view = stack[0]
            if view.__class__ is dict:
                if name in view:
                    return view[name]
            elif is_nullish(view):  # mustache.js reads view[name] and throws a TypeError
                raise RenderError(f"mustache.js cannot look up {name!r} in a null list item")
            elif has_property(view, name):
                return property_of(view, name)
            stack = stack[1]
        return UNDEFINED

    return lookup


def _mustache_dotted(names: list[str]) -> Callable[[_MStack], Any]:
    """A dotted name: found in a view only if its last segment is there."""
    last = len(names) - 1

    def lookup(stack: Any) -> Any:
        while stack is not None:
            value, hit = stack[0], False
            for index, part in enumerate(names):
                if is_nullish(value):
                    break
                if index == last:
                    hit = has_property(value, part) or _primitive_has(value, part)
                value = property_of(value, part)
            if hit:
                return value
            stack = stack[1]
        return UNDEFINED

    return lookup


def _mustache_section(
    lookup: Callable[[_MStack], Any], nodes: tuple[_MNode | str, ...], inverted: bool
) -> _MNode:
    """A section (lists iterate, truthy values push) or an inverted section."""

    def section(stack: _MStack, run: Run) -> None:
        value = lookup(stack)
        if not truthy(value):
            return
        if isinstance(value, list):
            for item in value:
                run.tick()
                run_nodes(nodes, (item, stack), run)
        elif value is True:
            run_nodes(nodes, stack, run)
        else:
            run_nodes(nodes, (value, stack), run)

    def inverted_section(stack: _MStack, run: Run) -> None:
        value = lookup(stack)
        if not truthy(value) or (isinstance(value, list) and not value):
            run_nodes(nodes, stack, run)

    return inverted_section if inverted else section


def _mustache_value(lookup: Callable[[_MStack], Any], escape: bool) -> _MNode:
    """`{{name}}` (escaped as mustache.js does) or `{{{name}}}` / `{{&name}}`."""

    def value_node(stack: _MStack, run: Run) -> None:
        value = lookup(stack)
        if not is_nullish(value):
            text = js_string(value, run)
            run.write(escape_mustache(text) if escape else text)

    return value_node


def compile_mustache(items: list[_MToken | _MSection]) -> tuple[_MNode | str, ...]:
    """Mustache tokens to closures, adjacent text joined."""
    nodes: list[_MNode | str] = []
    for item in items:
        if isinstance(item, _MSection):
            children = compile_mustache(item.children)
            nodes.append(_mustache_section(_mustache_lookup(item.name), children, item.kind == "^"))
        elif item[0] == "text":
            if nodes and isinstance(nodes[-1], str):
                nodes[-1] += item[1]
            else:
                nodes.append(item[1])
        else:
            nodes.append(_mustache_value(_mustache_lookup(item[1]), item[0] == "name"))
    return tuple(nodes)
