"""Handlebars' runtime: scopes, the render loop and the closures a template compiles to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relay.integrations.handlebars.bounds import Run, run_nodes
from relay.integrations.handlebars.values import (
    NULL_CONTEXT,
    UNDEFINED,
    escape_handlebars,
    is_empty,
    is_nullish,
    loose_equal,
    object_keys,
    output_text,
    property_of,
    strict_equal,
    truthy,
)


class Scope:
    """Where a Handlebars program runs: context, `../` chain, `@` data, block parameters."""

    __slots__ = ("ctx", "data", "depths", "params")

    def __init__(self, ctx: Any, depths: Any, data: dict[str, Any], params: Any) -> None:
        self.ctx = ctx
        self.depths = depths  # (context, parent link) back to the root's (root, None)
        self.data = data
        self.params = params  # (values, parent link) for each program declaring `as |...|`


Get = Callable[[Scope, Run], Any]
Node = Callable[[Scope, Run], None]


def _same_context(context: Any, head: Any) -> bool:
    """Whether entering `context` keeps the `../` chain (Handlebars: `context == depths[0]`)."""
    if context is NULL_CONTEXT:
        return head is None or head is NULL_CONTEXT
    return loose_equal(context, head)


class Body:
    """A compiled program, entered with a context, `@` data and block parameter values."""

    __slots__ = ("declares", "nodes")

    def __init__(self, nodes: tuple[Node | str, ...], declares: bool) -> None:
        self.nodes = nodes
        self.declares = declares

    def enter(
        self, scope: Scope, run: Run, context: Any, data: dict[str, Any], values: Any = ()
    ) -> None:
        """Runs the program in `context`; a new context extends the `../` chain."""
        if context is scope.ctx and data is scope.data and not self.declares:
            run_nodes(self.nodes, scope, run)
            return
        depths = scope.depths
        if context is not depths[0] and not _same_context(context, depths[0]):
            depths = (context, depths)
        params = (values, scope.params) if self.declares else scope.params
        run_nodes(self.nodes, Scope(context, depths, data, params), run)


def _this(scope: Scope) -> Any:
    """A helper's `this`: the context, or Handlebars' empty null context."""
    ctx = scope.ctx
    return NULL_CONTEXT if ctx is None or ctx is UNDEFINED else ctx


def _enter(body: Body | None, scope: Scope, run: Run, context: Any) -> None:
    """`options.fn(context)` / `options.inverse(context)`: the data stays; no-op if absent."""
    if body is not None:
        body.enter(scope, run, context, scope.data)


def _iterate(value: Any, scope: Scope, run: Run, fn: Body | None) -> int:
    """Handlebars' #each over a list or object; returns how many items it visited."""
    if isinstance(value, list):
        pairs: list[tuple[Any, Any]] = list(enumerate(value))
    elif isinstance(value, dict):
        pairs = [(key, value[key]) for key in object_keys(value)]
    else:
        return 0
    data = dict(scope.data)
    data["_parent"] = scope.data
    last = len(pairs) - 1
    for index, (key, item) in enumerate(pairs):
        run.tick()
        data["key"], data["index"] = key, index
        data["first"], data["last"] = index == 0, index == last
        if fn is not None:
            fn.enter(scope, run, item, data, [item, key])
    return len(pairs)


def if_node(cond: Get, fn: Body | None, inverse: Body | None, negate: bool) -> Node:
    """#if / #unless: JavaScript truthiness, and an empty list is false."""

    def node(scope: Scope, run: Run) -> None:
        value = cond(scope, run)
        passed = truthy(value) and not (isinstance(value, list) and not value)
        _enter(fn if passed != negate else inverse, scope, run, _this(scope))

    return node


def each_node(items: Get, fn: Body | None, inverse: Body | None) -> Node:
    """#each: the program per item with @index, @key, @first, @last; else the inverse."""

    def node(scope: Scope, run: Run) -> None:
        if _iterate(items(scope, run), scope, run, fn) == 0:
            _enter(inverse, scope, run, _this(scope))

    return node


def with_node(target: Get, fn: Body | None, inverse: Body | None) -> Node:
    """#with: the program in the value's context unless the value is empty."""

    def node(scope: Scope, run: Run) -> None:
        value = target(scope, run)
        if is_empty(value):
            _enter(inverse, scope, run, _this(scope))
        elif fn is not None:
            fn.enter(scope, run, value, scope.data, [value])

    return node


def equal_node(left: Get, right: Get, fn: Body | None, inverse: Body | None) -> Node:
    """LaunchDarkly's #equal / #equalWithElse: the program when `left === right`."""

    def node(scope: Scope, run: Run) -> None:
        same = strict_equal(left(scope, run), right(scope, run))
        _enter(fn if same else inverse, scope, run, _this(scope))

    return node


def section_node(target: Get, fn: Body | None, inverse: Body | None) -> Node:
    """A block on a plain value (Handlebars' blockHelperMissing), as a Mustache section."""

    def node(scope: Scope, run: Run) -> None:
        value = target(scope, run)
        # Handlebars calls blockHelperMissing with `this` the bare context, null included
        if value is True:
            _enter(fn, scope, run, scope.ctx)
        elif value is False or is_nullish(value) or (isinstance(value, list) and not value):
            _enter(inverse, scope, run, scope.ctx)
        elif isinstance(value, list):
            _iterate(value, scope, run, fn)
        elif fn is not None:
            fn.enter(scope, run, value, scope.data)

    return node


def value_node(get: Get, escape: bool) -> Node:
    """`{{value}}` (HTML-escaped) or `{{{value}}}`."""

    def node(scope: Scope, run: Run) -> None:
        value = get(scope, run)
        text = value if value.__class__ is str else output_text(value, run)
        run.write(escape_handlebars(text) if escape else text)

    return node


def _resolve(value: Any, parts: tuple[str, ...]) -> Any:
    """Walks `parts` from `value`; a null or undefined on the way is the result."""
    for part in parts:
        if value.__class__ is dict:
            value = value.get(part, UNDEFINED)
        elif value is None or value is UNDEFINED:
            return value
        else:
            value = property_of(value, part)
    return value


def _resolve_data(value: Any, parts: tuple[str, ...]) -> Any:
    """Walks `parts` from `value` as Handlebars does for `@` data: a falsy value stops."""
    for part in parts:
        if not truthy(value):
            return value
        value = property_of(value, part)
    return value


def context_getter(depth: int, parts: tuple[str, ...]) -> Get:
    """A path on the context, or `depth` contexts up (`../`)."""
    if depth == 0 and len(parts) == 1:
        key = parts[0]

        def get_name(scope: Scope, run: Run) -> Any:
            ctx = scope.ctx
            if ctx.__class__ is dict:
                return ctx.get(key, UNDEFINED)
            return _resolve(ctx, parts)

        return get_name

    def get(scope: Scope, run: Run) -> Any:
        link = scope.depths
        for _ in range(depth):
            link = link[1]
            if link is None:
                return UNDEFINED
        return _resolve(scope.ctx if depth == 0 else link[0], parts)

    return get


def data_getter(depth: int, parts: tuple[str, ...]) -> Get:
    """An `@` path: `@index`, `@root.x`, `@../key`."""

    def get(scope: Scope, run: Run) -> Any:
        frame: Any = scope.data
        for _ in range(depth):
            if not truthy(frame):
                break
            frame = property_of(frame, "_parent")
        return _resolve_data(frame, parts)

    return get


def param_getter(level: int, index: int, parts: tuple[str, ...]) -> Get:
    """A block parameter (`as |item key|`) `level` declaring programs up, then `parts`."""

    def get(scope: Scope, run: Run) -> Any:
        link = scope.params
        for _ in range(level):
            link = link[1]
        values = link[0]
        return _resolve(values[index] if index < len(values) else UNDEFINED, parts)

    return get


def helper_getter(function: Callable[..., Any], args: list[Get]) -> Get:
    """A value helper's result over its evaluated arguments."""
    if len(args) == 1:
        (only,) = args
        return lambda scope, run: function(run, only(scope, run))
    return lambda scope, run: function(run, *[arg(scope, run) for arg in args])
