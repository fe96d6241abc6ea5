"""Handlebars' compiler: the stripped syntax tree to closures, refusing what the subset
leaves out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from relay.integrations.handlebars.errors import TemplateError, fail
from relay.integrations.handlebars.helpers import (
    BLOCK_HELPERS,
    EQUAL_VALUES,
    UNSUPPORTED_HELPERS,
    VALUE_HELPERS,
)
from relay.integrations.handlebars.parser import Parser
from relay.integrations.handlebars.runtime import (
    Body,
    Get,
    Node,
    context_getter,
    data_getter,
    each_node,
    equal_node,
    helper_getter,
    if_node,
    param_getter,
    section_node,
    value_node,
    with_node,
)
from relay.integrations.handlebars.syntax import (
    Block,
    Call,
    Comment,
    Content,
    Literal,
    Mustache,
    Path,
    Program,
    Statement,
)
from relay.integrations.handlebars.values import scalar_text
from relay.integrations.handlebars.whitespace import strip_program


class _Compiler:
    """Turns the stripped tree into closures, refusing what this subset leaves out."""

    def __init__(self, source: str, name: str) -> None:
        self.source, self.name = source, name
        self.params: list[list[str]] = []  # block parameter names, innermost first

    def fail(self, pos: int, what: str) -> TemplateError:
        """A TemplateError at `pos`."""
        return fail(self.source, self.name, pos, what)

    def body(self, program: Program) -> Body:
        """A program's closures; its block parameters are in scope inside it."""
        declares = program.block_params is not None
        if declares:
            self.params.insert(0, program.block_params or [])
        nodes: list[Node | str] = []
        for statement in program.body:
            node = self.statement(statement)
            if isinstance(node, str) and nodes and isinstance(nodes[-1], str):
                nodes[-1] += node  # adjacent text (around a comment) written once
            elif node is not None:
                nodes.append(node)
        if declares:
            self.params.pop(0)
        return Body(tuple(nodes), declares)

    def statement(self, statement: Statement) -> Node | str | None:
        """One statement's closure, its text, or nothing."""
        if isinstance(statement, Content):
            return statement.value or None
        if isinstance(statement, Comment):
            return None
        if isinstance(statement, Mustache):
            return self.mustache(statement)
        return self.block(statement)

    def head(self, call: Call) -> tuple[Path, str | None]:
        """The called path (a literal name read as a path) and the helper it names, if any."""
        head = call.head
        if isinstance(head, Literal):
            text = scalar_text(head.value)
            head = Path(False, 0, [text], text, head.pos)
        if head.simple and self.find_param(head.parts[0]) is None:
            name = head.parts[0]
            if name in BLOCK_HELPERS or name in VALUE_HELPERS:
                return head, name
            if name in UNSUPPORTED_HELPERS:
                raise self.fail(head.pos, f"the {name} helper is not supported")
        if call.params:
            raise self.fail(head.pos, f"{head.original} is not a helper this renderer knows")
        return head, None

    def mustache(self, mustache: Mustache) -> Node:
        """`{{value}}` or `{{helper args}}`."""
        path, helper = self.head(mustache.call)
        if helper is None:
            return value_node(self.path(path), mustache.escaped)
        if helper not in VALUE_HELPERS:
            raise self.fail(path.pos, f"{helper} is a block helper: write {{{{#{helper} ...}}}}")
        return value_node(self.helper(mustache.call, helper, VALUE_HELPERS), mustache.escaped)

    def subexpression(self, call: Call) -> Get:
        """`(helper args)`."""
        path, helper = self.head(call)
        helpers = VALUE_HELPERS | EQUAL_VALUES
        if helper is None or helper not in helpers:
            raise self.fail(path.pos, f"{path.original} cannot be called in a subexpression")
        return self.helper(call, helper, helpers)

    def helper(
        self, call: Call, name: str, helpers: Mapping[str, tuple[int, Callable[..., Any]]]
    ) -> Get:
        """A value helper's getter, its number of arguments checked."""
        arity, function = helpers[name]
        self.check_arity(call, name, arity)
        return helper_getter(function, [self.arg(param) for param in call.params])

    def check_arity(self, call: Call, name: str, arity: int) -> None:
        """TemplateError unless `call` passes `arity` arguments."""
        if len(call.params) != arity:
            plural = "" if arity == 1 else "s"
            raise self.fail(
                call.pos, f"{name} takes {arity} argument{plural}, not {len(call.params)}"
            )

    def block(self, block: Block) -> Node:
        """A block helper, or a section on a plain value."""
        path, helper = self.head(block.call)
        if helper is not None and helper not in BLOCK_HELPERS:
            raise self.fail(path.pos, f"{helper} is not a block helper: write {{{{{helper} ...}}}}")
        if block.block_params is not None and (helper not in ("each", "with") or block.inverted):
            raise self.fail(path.pos, "block parameters (as |x|) need {{#each}} or {{#with}}")
        fn = self.body(block.program) if block.program is not None else None
        inverse = self.body(block.inverse) if block.inverse is not None else None
        if helper is None:
            return section_node(self.path(path), fn, inverse)
        self.check_arity(block.call, helper, BLOCK_HELPERS[helper])
        args = [self.arg(param) for param in block.call.params]
        if helper in ("if", "unless"):
            return if_node(args[0], fn, inverse, negate=helper == "unless")
        if helper == "each":
            return each_node(args[0], fn, inverse)
        if helper == "with":
            return with_node(args[0], fn, inverse)
        return equal_node(args[0], args[1], fn, inverse)

    def arg(self, param: Path | Literal | Call) -> Get:
        """An argument's getter: a literal, a path or a subexpression."""
        if isinstance(param, Literal):
            value = param.value
            return lambda scope, run: value
        if isinstance(param, Call):
            return self.subexpression(param)
        return self.path(param)

    def find_param(self, name: str) -> tuple[int, int] | None:
        """(declaring programs up, index) of a block parameter in scope, if `name` is one."""
        for level, names in enumerate(self.params):
            if name in names:
                return level, names.index(name)
        return None

    def path(self, path: Path) -> Get:
        """A path's getter: block parameter, `@` data or context."""
        parts = tuple(path.parts)
        if parts and not path.scoped:
            found = self.find_param(parts[0])
            if found is not None:
                return param_getter(found[0], found[1], parts[1:])
        if path.data and parts:
            return data_getter(path.depth, parts)
        return context_getter(path.depth, parts)


def compile_handlebars(source: str, name: str) -> tuple[Node | str, ...]:
    """A Handlebars template's root program, compiled."""
    nul = source.find("\x00")
    if nul >= 0:
        raise fail(source, name, nul, "a NUL character (Handlebars' lexer stops at it)")
    program = Parser(source, name).parse()
    strip_program(program, root=True)
    return _Compiler(source, name).body(program).nodes
