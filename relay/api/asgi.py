"""The ASGI application for uvicorn (`uvicorn relay.api.asgi:app`; `relay serve` runs it)."""

from __future__ import annotations

from relay.api.app import create_app
from relay.logs import configure_logging
from relay.settings import get_settings

# each API process (uvicorn --workers N spawns them) sets up relay's logging for itself
configure_logging(get_settings().log_level, component="api")
app = create_app()
