"""Stored credentials taken out of text a receiver or the sender produced, before any answer.

A receiver may echo what it was sent (`401: bad token Bearer abc...`), and a protocol
error quotes the header it failed on. Such text is recorded as is (`_status.errors`,
delivery attempts) and masked here, at view time, for writers and admins only: readers
never get receiver text (relay/subscriptions/views.py). The values masked are the
subscription's current credentials (`relay.subscriptions.config.credentials`) and the secret a
rotation replaced; a change of headers or URL clears `_status.errors`, so the values it
replaced have no recorded status text left to hide in.

Each value gives a small fixed set of forms (as is, URL-encoded, JSON- and repr-escaped,
the credential after `Bearer `/`Basic ` and Basic's decoded `user:pass`, its longest
words), each masked with `str.replace`: linear in the text, no pattern to compile or
cache. A text cut off inside a value (status bodies keep 4 KiB, attempt bodies 1 KiB)
ends with a prefix of a form; that prefix is masked too. Measured on a page of 20
subscriptions with 20 headers of 113 words and 10 errors of 1 KiB each: the former single
regex of every form took 2.8 ms per 1 KiB text and 60 ms to build per subscription (a warm
GET of the page 0.93 s); this takes 0.15 ms and 2 ms (the page's masking ~70 ms).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote

from relay.store.subscriptions import SubscriptionRecord
from relay.subscriptions.config import INTEGRATION_KEY, SECRET_PREFIX, credentials
from relay.subscriptions.integration_config import form_credentials
from relay.subscriptions.urls import MASK

# shorter values are left alone: masking every "ops" or "1" would garble the text, and a
# credential of three characters protects nothing
MIN_REDACTED = 4
# the longest words of a multi-word value masked on their own, and their shortest length
MAX_WORDS = 4
_WORD = 8
# forms masked per subscription, its secrets' and headers' first: bounds the work per text
MAX_FORMS = 512
# text is cut to this before it is scanned; stored bodies are at most 4 KiB
MAX_SCANNED = 16 * 1024
_SEPARATORS = re.compile(r"[\s,;]+")


def redactor_for(record: SubscriptionRecord) -> Redactor:
    """The redactor of one subscription's stored credentials."""
    if record.integration_key == INTEGRATION_KEY:
        stored = credentials(record.config)
    else:
        stored = form_credentials(record.secret_fields, record.config)
    values = [record.secret, record.previous_secret or "", *stored]
    return Redactor(dict.fromkeys(value for value in values if value))


class Redactor:
    """Replaces every form of the given credentials in a text with `MASK`."""

    def __init__(self, values: Iterable[str]) -> None:
        forms: dict[str, None] = {}
        for value in values:
            forms.update(dict.fromkeys(_forms(value)))
            if len(forms) >= MAX_FORMS:
                break
        # the longest first: a value's whole form goes before a word of it
        self._forms = sorted(list(forms)[:MAX_FORMS], key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = text[:MAX_SCANNED]
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return _without_cut_off_tail(text, self._forms)

    def optional(self, text: str | None) -> str | None:
        return None if text is None else self(text)


def _forms(value: str) -> list[str]:
    """The ways a value shows up in text: as is, escaped, encoded, and its parts."""
    parts = [value, *_parts(value)]
    forms = [unquote(value), repr(value)[1:-1]]
    for part in parts:
        forms += (part, quote(part, safe=""), json.dumps(part)[1:-1])
    return [form for form in dict.fromkeys(forms) if len(form) >= MIN_REDACTED]


def _parts(value: str) -> list[str]:
    """The credential after a scheme, Basic's decoded forms, the secret's key, long words."""
    scheme, _, rest = value.strip().partition(" ")
    found = [rest.strip()] if rest else []
    if scheme.lower() == "basic":
        found += _basic_credentials(rest.strip())
    if value.startswith(SECRET_PREFIX):
        found.append(value.removeprefix(SECRET_PREFIX))
    words = {word for word in _SEPARATORS.split(value) if len(word) >= _WORD} - {value}
    return found + sorted(words, key=len, reverse=True)[:MAX_WORDS]


def _basic_credentials(token: str) -> list[str]:
    try:
        decoded = base64.b64decode(token, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return []
    return [decoded, decoded.partition(":")[2]]


def _without_cut_off_tail(text: str, forms: list[str]) -> str:
    """`text` with its end masked when that end is the start of a form (a value cut off)."""
    cut = len(text)
    for form in forms:
        head = form[:MIN_REDACTED]
        # the end is at least MIN_REDACTED long, and shorter than the form (whole ones are gone)
        at = text.find(head, max(len(text) - len(form) + 1, 0), len(text))
        while 0 <= at <= len(text) - MIN_REDACTED:
            if form.startswith(text[at:]):
                cut = min(cut, at)
                break
            at = text.find(head, at + 1)
    return text if cut == len(text) else text[:cut] + MASK
