"""The renderer's errors, and where in a template source a fault is."""

from __future__ import annotations


class TemplateError(ValueError):
    """A template that does not compile; the message names `name:line:column` and the fault."""


class RenderError(ValueError):
    """A render that failed or passed one of its bounds (the message says which)."""


def _where(source: str, name: str, pos: int) -> str:
    """`name:line:column` (both from 1) of offset `pos` in `source`."""
    line = source.count("\n", 0, pos) + 1
    column = pos - (source.rfind("\n", 0, pos) + 1) + 1
    return f"{name}:{line}:{column}"


def fail(source: str, name: str, pos: int, what: str) -> TemplateError:
    """A TemplateError naming where `what` went wrong."""
    return TemplateError(f"{_where(source, name, pos)}: {what}")
