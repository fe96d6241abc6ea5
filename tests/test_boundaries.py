"""The code's boundaries: the import contracts, and no reaching into other libraries' privates."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("relay", "workers", "policies")
# underscore names the standard library documents as public API
DOCUMENTED = frozenset({"_exit", "_replace", "_asdict", "_fields", "_make", "_field_defaults"})
_ACCESSORS = frozenset({"getattr", "setattr", "hasattr", "delattr"})


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield str(path.relative_to(ROOT)), ast.parse(path.read_text(), filename=str(path))


def _private(name: str) -> bool:
    dunder = name.startswith("__") and name.endswith("__")
    return name.startswith("_") and not dunder and name not in DOCUMENTED


def _own(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in {"self", "cls"}


def _reaches_privately(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return _private(node.attr) and not _own(node.value)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _ACCESSORS
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
        and _private(node.args[1].value)
        and not _own(node.args[0])
    )


def private_reaches(where: str, tree: ast.Module) -> list[str]:
    """Private attributes read or written on anything but `self`/`cls`, by attribute,
    by getattr-like call, or imported by name from another package."""
    found = []
    for node in ast.walk(tree):
        if _reaches_privately(node):
            found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] not in PACKAGES:
            found += [
                f"{where}:{node.lineno}: from {node.module} import {alias.name}"
                for alias in node.names
                if _private(alias.name)
            ]
    return found


def test_no_module_reaches_into_another_objects_private_attributes() -> None:
    """A library's private attribute can change in any release: relay uses public APIs
    only (and its own modules keep their privates to themselves too)."""
    assert [reach for where, tree in _sources() for reach in private_reaches(where, tree)] == []


def test_the_private_check_catches_what_it_is_for() -> None:
    """httpx's `transport._pool` (what the old workers/connections.py assigned), a getattr
    of a private name, a private import; not `self._x`, `os._exit` or a dunder."""
    source = (
        "import os\nfrom prometheus_client.values import _private_thing\n"
        "transport._pool = None\nflag = getattr(values.ValueClass, '_multiprocess', False)\n"
        "self._mine = 1\nos._exit(0)\nname = module.__name__\n"
    )
    reaches = private_reaches("example.py", ast.parse(source))
    assert [reach.split(": ", 1)[1] for reach in reaches] == [
        "from prometheus_client.values import _private_thing",
        "transport._pool",
        "getattr(values.ValueClass, '_multiprocess', False)",
    ]


def test_import_contracts_hold() -> None:
    """`lint-imports` (contracts in .importlinter, explained in docs/architecture.md) passes."""
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert command, "import-linter is a test dependency (pip install -e '.[test]')"
    result = subprocess.run(
        [command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
