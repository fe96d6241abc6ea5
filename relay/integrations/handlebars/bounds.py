"""The bounds of a render: its steps and output size, and how deep anything nests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

from relay.integrations.handlebars.errors import RenderError

MAX_NESTING: Final = 64


class Run:
    """One render's output and the counts that bound it."""

    __slots__ = ("max_size", "max_steps", "out", "size", "steps")

    def __init__(self, max_size: int, max_steps: int) -> None:
        self.out: list[str] = []
        self.size = 0
        self.steps = 0
        self.max_size = max_size
        self.max_steps = max_steps

    def tick(self, count: int = 1) -> None:
        """Counts `count` steps; RenderError past the bound."""
        self.steps += count
        if self.steps > self.max_steps:
            raise RenderError(f"the render passed its bound of {self.max_steps} steps")

    def write(self, text: str) -> None:
        """Appends output; RenderError past the bound on characters."""
        self.out.append(text)
        self.size += len(text)
        if self.size > self.max_size:
            raise RenderError(f"the output passed its bound of {self.max_size} characters")


State = TypeVar("State")


def run_nodes(
    nodes: tuple[Callable[[State, Run], None] | str, ...], state: State, run: Run
) -> None:
    """Runs compiled nodes over `state` (a Handlebars scope, a Mustache stack): text is
    written, the rest called; one step each."""
    run.tick(len(nodes))
    out = run.out
    for node in nodes:
        if isinstance(node, str):  # the template's own text: its size is checked once, below
            out.append(node)
            run.size += len(node)
        else:
            node(state, run)
    run.write("")
