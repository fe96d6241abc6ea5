"""Fixtures of the integration tests: Handlebars.js and mustache.js from npm, to compare
relay's renderer with."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

NODE_PACKAGES = ("handlebars@4.7.8", "mustache@4.2.0", "dateformat@4.6.3")
RENDER_JS = Path(__file__).with_name("render.js")


@pytest.fixture(scope="session")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Handlebars.js, mustache.js and dateformat from npm, installed once per run.

    The folder sits beside the xdist workers' temporary folders, so they share it; a file
    lock lets one install while the others wait. No node or npm fails the test: CI has both.
    """
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not on PATH: comparing with Handlebars.js needs it")
    root = tmp_path_factory.getbasetemp().parent / "relay-node-templates"
    root.mkdir(parents=True, exist_ok=True)
    marker = root / "installed.txt"
    with (root / "install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists() or marker.read_text() != " ".join(NODE_PACKAGES):
            _npm_install(root)
            marker.write_text(" ".join(NODE_PACKAGES))
    return root / "node_modules"


def _npm_install(root: Path) -> None:
    """`npm install` of the pinned packages into `root`."""
    command = ["npm", "install", "--prefix", str(root), "--no-audit", "--no-fund"]
    command += ["--no-save", "--no-package-lock", *NODE_PACKAGES]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    if done.returncode != 0:
        pytest.fail(f"npm install failed ({done.returncode}):\n{done.stderr[-4000:]}")


def render_with_node(
    node_modules: Path, cases: list[tuple[str, dict[str, Any], bool]]
) -> list[dict[str, str]]:
    """Each (template, context, mustache) rendered by Handlebars.js or mustache.js."""
    items = [{"template": t, "context": c, "mustache": m} for t, c, m in cases]
    env = {**os.environ, "NODE_PATH": str(node_modules), "TZ": "UTC"}
    done = subprocess.run(
        ["node", str(RENDER_JS)],
        input=json.dumps(items),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[str, str]] = json.loads(done.stdout)
    return results
