"""The ASGI application for uvicorn (`uvicorn relay.api.asgi:app`; `relay serve` runs it)."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from relay.api.app import create_app
from relay.observability.logs import configure_logging
from relay.settings import get_settings, settings_problems

try:
    settings = get_settings()
except ValidationError as exc:  # the variables' names and what is wrong, not a traceback
    print(f"relay: {settings_problems(exc)}", file=sys.stderr)
    raise SystemExit(2) from None

# each API process (uvicorn --workers N spawns them) sets up relay's logging for itself
configure_logging(settings.log_level, component="api")
app = create_app(settings)
