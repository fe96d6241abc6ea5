"""Stored credentials taken out of text a receiver or the sender produced, before any answer.

A receiver may echo what it was sent (`401: bad token Bearer abc...`), and a protocol
error quotes the header it failed on. Such text is recorded as is (`_status.errors`,
delivery attempts) and masked here, at view time, with the subscription's current
credentials (`relay.webhook_config.credentials`) and the secret a rotation replaced.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import quote, unquote

from relay.store.subscriptions import SubscriptionRecord
from relay.webhook_config import MASK, SECRET_PREFIX, credentials

# shorter values are left alone: masking every "ops" or "1" would garble the text, and a
# credential of three characters protects nothing
MIN_REDACTED = 4
_WORD = 8  # words of a multi-word value (`Bearer <token>`) masked on their own from this length
_SEPARATORS = re.compile(r"[\s,;]+")


def redactor_for(record: SubscriptionRecord) -> Redactor:
    """The redactor of one subscription's stored credentials."""
    values = credentials(record.config)
    if record.previous_secret:
        values.append(record.previous_secret)
    return _redactor(frozenset(values))


class Redactor:
    """Replaces every form of the given credentials in a text with `MASK`."""

    def __init__(self, values: Iterable[str]) -> None:
        forms = {form for value in values for form in _forms(value)}
        ordered = sorted(forms, key=len, reverse=True)  # the longest form wins
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        return text if self._pattern is None else self._pattern.sub(MASK, text)

    def optional(self, text: str | None) -> str | None:
        return None if text is None else self(text)


@lru_cache(maxsize=256)
def _redactor(values: frozenset[str]) -> Redactor:
    return Redactor(values)


def _forms(value: str) -> set[str]:
    """The ways a value shows up in text: as is, escaped, encoded, and its parts."""
    forms = {value, unquote(value), quote(value, safe=""), json.dumps(value)[1:-1]}
    forms.add(repr(value)[1:-1])
    forms.update(word for word in _SEPARATORS.split(value) if len(word) >= _WORD)
    if value.startswith(SECRET_PREFIX):
        forms.add(value.removeprefix(SECRET_PREFIX))
    forms.update(_basic_credentials(value))
    return {form for form in forms if len(form) >= MIN_REDACTED}


def _basic_credentials(value: str) -> set[str]:
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic":
        return set()
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return set()
    return {decoded, decoded.partition(":")[2]}
