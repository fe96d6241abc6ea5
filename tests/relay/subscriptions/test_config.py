"""The webhook config rules as plain functions: masking, write-back, origins."""

from __future__ import annotations

import pytest

from relay.errors import InvalidRequestError
from relay.subscriptions.config import MASK, masked_config, masked_url, origin, validate_config

SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h.example.com/x", "https://h.example.com/x"),
        ("https://h.example.com/x?", "https://h.example.com/x?"),
        ("https://h.example.com/x?code=abc", f"https://h.example.com/x?code={MASK}"),
        ("https://h.example.com/x?a=1&b=&c", f"https://h.example.com/x?a={MASK}&b=&{MASK}"),
        ("https://h.example.com/x?a=1#frag?b=2", f"https://h.example.com/x?a={MASK}#frag?b=2"),
    ],
)
def test_masked_url_hides_every_query_value(url: str, shown: str) -> None:
    """Query values (and bare query parts) are masked; names, path and fragment are kept."""
    assert masked_url(url) == shown


def test_masked_config_shows_nothing_of_a_value() -> None:
    """Secret and every header value become the same fixed mask, whatever their length."""
    stored = {
        "url": "https://h.example.com",
        "secret": SECRET,
        "format": "unleash",
        "headers": {
            "X-Api-Key": "123456789",
            "X-Team": "ops",
            "Authorization": "Bearer " + "x" * 90,
        },
    }
    shown = masked_config(stored)
    assert shown["secret"] == MASK
    assert shown["headers"] == {"X-Api-Key": MASK, "X-Team": MASK, "Authorization": MASK}


def test_masked_write_back_resolves_to_stored_values() -> None:
    """A config written back as shown resolves to the stored one."""
    # given
    stored = {
        "url": "https://h.example.com/x?code=s3cr3t&team=ops",
        "secret": SECRET,
        "format": "unleash",
        "headers": {"X-Token": "tok-0123456789", "X-Team": "ops"},
    }
    shown = masked_config(stored)
    # when
    checked = validate_config(shown, stored=stored)
    # then
    assert checked.config == stored and checked.secret_generated is False


def test_header_mask_resolves_by_name_case_insensitively() -> None:
    """`x-token: ********` keeps the value stored as `X-Token`."""
    stored = {"url": "https://h.example.com", "secret": SECRET, "headers": {"X-Token": "tok-1"}}
    raw = {"url": "https://h.example.com", "secret": MASK, "headers": {"x-token": MASK}}
    assert validate_config(raw, stored=stored).config["headers"] == {"x-token": "tok-1"}


@pytest.mark.parametrize(
    ("raw", "attribute"),
    [
        ({"url": "https://h.example.com", "headers": {"X-Other": MASK}}, "config.headers.X-Other"),
        ({"url": "https://h.example.com", "secret": MASK}, "config.secret"),
        ({"url": f"https://h.example.com/?code={MASK}"}, "config.url"),
    ],
)
def test_a_mask_without_a_stored_value_is_refused(raw: dict[str, object], attribute: str) -> None:
    """A mask means "keep what is stored here"; with nothing stored there it is a 400."""
    with pytest.raises(InvalidRequestError) as caught:
        validate_config(raw, stored=None)
    assert [p.attribute for p in caught.value.errors] == [attribute]


@pytest.mark.parametrize(
    ("url", "moved"),
    [
        ("https://h.example.com/other/path?x=1", False),
        ("https://H.EXAMPLE.COM:443/", False),
        ("http://h.example.com/", True),
        ("https://h.example.com:8443/", True),
        ("https://h.example.com.evil.net/", True),
        ("https://sub.h.example.com/", True),
    ],
)
def test_origin_decides_whether_credentials_follow(url: str, moved: bool) -> None:
    """Stored headers follow a same-origin change only (scheme, host, port; default ports)."""
    stored = {"url": "https://h.example.com/hook", "secret": SECRET, "headers": {"X-A": "v1"}}
    raw = {"url": url, "secret": MASK, "headers": {"X-A": MASK}}
    assert (origin(url) != origin(stored["url"])) is moved
    if moved:
        with pytest.raises(InvalidRequestError) as caught:
            validate_config(raw, stored=stored)
        assert [p.attribute for p in caught.value.errors] == ["config.headers.X-A"]
    else:
        assert validate_config(raw, stored=stored).config["headers"] == {"X-A": "v1"}


def test_masked_query_resolves_only_at_the_same_place() -> None:
    """A masked query value needs the same origin and the same name at the same position."""
    stored = {"url": "https://h.example.com/x?code=s3cr3t", "secret": SECRET}
    same = validate_config({"url": f"https://h.example.com/y?code={MASK}"}, stored=stored)
    assert same.config["url"] == "https://h.example.com/y?code=s3cr3t"
    for url in (f"https://h.example.com/y?key={MASK}", f"https://other.example.com/?code={MASK}"):
        with pytest.raises(InvalidRequestError):
            validate_config({"url": url}, stored=stored)
