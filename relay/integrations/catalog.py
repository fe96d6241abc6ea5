"""The integrations a process knows: the built-ins, then the operator's folder.

Built-ins ship in `relay/integrations/builtin/<key>/`; `RELAY_INTEGRATIONS_DIR` holds an
operator's `<key>/manifest.json` folders, and one with a built-in's key replaces it (so a
team can reword the Slack message). `webhook` is relay's own and is not a manifest. Each
process (API, worker) loads the catalog once at start; a manifest that does not load
stops the start with its file and field named.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from relay.integrations.manifest import MANIFEST_FILE, Manifest, ManifestError, load_manifest
from relay.settings import Settings

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).parent / "builtin"
WEBHOOK = "webhook"
MAX_INTEGRATIONS = 500


class Catalog:
    """Manifests by key."""

    def __init__(self, manifests: dict[str, Manifest]) -> None:
        self._manifests = dict(sorted(manifests.items()))

    def get(self, key: str) -> Manifest | None:
        return self._manifests.get(key)

    def __iter__(self) -> Iterator[Manifest]:
        return iter(self._manifests.values())

    def __len__(self) -> int:
        return len(self._manifests)

    def knows(self, key: str) -> bool:
        """Whether subscriptions can be made for `key` (a manifest, or `webhook`)."""
        return key == WEBHOOK or key in self._manifests

    def keys(self) -> list[str]:
        """Every integration key, `webhook` first."""
        return [WEBHOOK, *self._manifests]


def load_catalog(settings: Settings) -> Catalog:
    """The built-ins and the operator's folder (`RELAY_INTEGRATIONS_DIR`), each checked."""
    manifests = {m.key: m for m in _builtins()}
    if settings.integrations_dir is not None:
        for manifest in _load_folder(settings.integrations_dir, builtin=False):
            if manifest.key in manifests:
                log.info(
                    "integration %s from %s replaces the built-in", manifest.key, manifest.path
                )
            manifests[manifest.key] = manifest
    return Catalog(manifests)


@cache
def _builtins() -> tuple[Manifest, ...]:
    """The built-ins, read once per process: they are part of the installed package."""
    return tuple(_load_folder(BUILTIN_DIR, builtin=True))


def _load_folder(root: Path, *, builtin: bool) -> list[Manifest]:
    if not root.is_dir():
        raise ManifestError(root, "", "is not a folder (RELAY_INTEGRATIONS_DIR)")
    folders = sorted(p for p in root.iterdir() if (p / MANIFEST_FILE).is_file())
    if len(folders) > MAX_INTEGRATIONS:
        raise ManifestError(
            root, "", f"holds {len(folders)} integrations; at most {MAX_INTEGRATIONS}"
        )
    return [load_manifest(folder, builtin=builtin) for folder in folders]
