"""The public surface: `compile_template` and the compiled `Template`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.integrations.handlebars.bounds import Run, run_nodes
from relay.integrations.handlebars.compiler import compile_handlebars
from relay.integrations.handlebars.errors import RenderError, TemplateError
from relay.integrations.handlebars.mustache import compile_mustache, mustache_tree
from relay.integrations.handlebars.runtime import Scope


class Template:
    """A compiled template; `render` may be called any number of times, from any thread."""

    __slots__ = ("_mustache", "_nodes", "name")

    def __init__(self, name: str, nodes: tuple[Any, ...], mustache: bool) -> None:
        self.name = name
        self._nodes = nodes
        self._mustache = mustache

    def render(
        self, context: Mapping[str, Any], *, max_bytes: int = 1_000_000, max_steps: int = 200_000
    ) -> str:
        """The template over `context`; RenderError past `max_steps` steps or `max_bytes`
        characters of output (characters, not UTF-8 bytes: a cheap bound that is never lower).
        """
        root = context if isinstance(context, dict) else dict(context)
        run = Run(max_bytes, max_steps)
        try:
            if self._mustache:
                run_nodes(self._nodes, (root, None), run)
            else:
                scope = Scope(root, (root, None), {"root": root}, None)
                run_nodes(self._nodes, scope, run)
        except RecursionError as exc:  # nesting is bounded at compile; this is a last guard
            raise RenderError(f"{self.name}: the render nests too deeply") from exc
        return "".join(run.out)


def compile_template(
    source: str, *, name: str = "template", mustache: bool = False, max_source: int = 256_000
) -> Template:
    """Compiles Handlebars (LaunchDarkly's subset) or, with `mustache`, mustache.js source.

    TemplateError names `name:line:column` and the fault: a syntax error, a feature outside
    the subset, a source over `max_source` characters, nesting deeper than 64.
    """
    if len(source) > max_source:
        raise TemplateError(
            f"{name}: the template has {len(source)} characters, over the limit of {max_source}"
        )
    if mustache:
        nodes: tuple[Any, ...] = compile_mustache(mustache_tree(source, name))
    else:
        nodes = compile_handlebars(source, name)
    return Template(name, nodes, mustache)
