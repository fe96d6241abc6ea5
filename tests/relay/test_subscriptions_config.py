"""The webhook config rules as plain functions: masking and write-back."""

from __future__ import annotations

import pytest

from relay.errors import InvalidRequestError
from relay.webhook_config import mask, masked_config, validate_config

SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="


@pytest.mark.parametrize(
    ("value", "shown"),
    [("whsec_abcdefgh", "whse******efgh"), ("12345678", "********"), ("", "")],
)
def test_mask_keeps_first_and_last_four(value: str, shown: str) -> None:
    """Masking keeps 4 characters at each end; short values are masked entirely."""
    assert mask(value) == shown


def test_masked_write_back_resolves_only_matching_values() -> None:
    """A masked secret or credential header equal to its stored mask resolves to the stored one."""
    # given
    stored = {
        "url": "https://h.example.com",
        "secret": SECRET,
        "format": "unleash",
        "headers": {"X-Token": "tok-0123456789", "X-Team": "ops"},
    }
    shown = masked_config(stored)
    # when
    checked = validate_config(shown, stored=stored)
    # then
    assert checked.config == stored and checked.secret_generated is False


def test_plain_header_value_is_taken_literally() -> None:
    """A non-credential header is never treated as masked, even if it looks so."""
    stored = {"url": "https://h.example.com", "secret": SECRET, "headers": {"X-Team": "opsteam1"}}
    raw = {**stored, "headers": {"X-Team": mask("opsteam1")}}
    assert validate_config(raw, stored=stored).config["headers"] == {"X-Team": mask("opsteam1")}


def test_mask_of_another_secret_is_refused() -> None:
    """A masked value that does not match the stored secret is not a valid secret: 400."""
    stored = {"url": "https://h.example.com", "secret": SECRET}
    other = "whsec_" + "WllYV1ZVVFNSUVBPTk1MS0pJSEdGRURDQkE5ODc2NTQ="
    with pytest.raises(InvalidRequestError) as caught:
        validate_config({"url": "https://h.example.com", "secret": mask(other)}, stored=stored)
    assert [p.attribute for p in caught.value.errors] == ["config.secret"]
