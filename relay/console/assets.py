"""The console's static files (package data in `static/`), read once and served by name.

The page is one HTML document and the ES modules and style sheets it loads: no build
step, nothing generated. A request names a file; it is looked up among the files read
from the package, never joined to a path, so no name reaches the file system: the
allow-list is the files `static/` holds whose names are plain (lower-case letters,
digits, `-`, `_`, one dot before a known suffix), `index.html` apart.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Final

INDEX: Final = "index.html"
MEDIA_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
_PLAIN_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\.[a-z0-9]{1,8}")


@dataclass(frozen=True)
class Asset:
    """One file as served: its bytes, type and entity tag."""

    body: bytes
    media_type: str
    etag: str


def index() -> Asset:
    """The console's one HTML page."""
    return _files()[INDEX]


def asset(name: str) -> Asset | None:
    """The file `/console/assets/<name>` serves, or None when `name` is not one of them."""
    return None if name == INDEX else _files().get(name)


@cache
def _files() -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    for entry in files(__package__ or "relay.console").joinpath("static").iterdir():
        name = entry.name
        suffix = "." + name.rpartition(".")[2]
        media_type = "text/html; charset=utf-8" if name == INDEX else MEDIA_TYPES.get(suffix)
        if media_type is None or not _PLAIN_NAME.fullmatch(name) or not entry.is_file():
            continue
        body = entry.read_bytes()
        found[name] = Asset(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
    if INDEX not in found:
        raise RuntimeError(f"the console's {INDEX} is missing from relay/console/static")
    return found
