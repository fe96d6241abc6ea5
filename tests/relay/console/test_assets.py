"""The console's files: an allow-list read from the package, looked up by name only."""

from __future__ import annotations

from importlib.resources import files

import pytest

from relay.console import assets

STATIC = files("relay.console").joinpath("static")


def test_the_page_and_its_files_are_package_data() -> None:
    """index.html, app.js and app.css are in relay/console/static and served as they are."""
    assert assets.index().body == STATIC.joinpath("index.html").read_bytes()
    for name in ("app.js", "app.css"):
        found = assets.asset(name)
        assert found is not None and found.body == STATIC.joinpath(name).read_bytes()


def test_every_file_of_the_folder_with_a_known_type_is_allowed() -> None:
    """No file the page needs is forgotten: each .js, .css, .svg, .png, .ico, .woff2."""
    names = [e.name for e in STATIC.iterdir() if e.name.endswith(tuple(assets.MEDIA_TYPES))]
    assert names and all(assets.asset(name) is not None for name in names)


@pytest.mark.parametrize(
    "name",
    [
        "index.html",
        "",
        ".",
        "..",
        "../__init__.py",
        "/etc/passwd",
        "app.js/",
        "app.js\x00",
        "APP.JS",
        "app.js.map",
        "__init__.py",
        "assets.py",
    ],
)
def test_anything_else_is_no_asset(name: str) -> None:
    """The page itself, paths, dots, NUL, other cases and other files: none."""
    assert assets.asset(name) is None


def test_each_type_is_named_and_each_file_has_a_stable_etag() -> None:
    """A script is JavaScript in UTF-8; its ETag is the same on every read."""
    found, again = assets.asset("app.js"), assets.asset("app.js")
    assert found is not None and again is not None
    assert found.media_type == "text/javascript; charset=utf-8"
    assert found.etag.startswith('"') and found.etag == again.etag
