"""The webhook config rules as plain functions: masking, write-back, origins."""

from __future__ import annotations

import pytest

from relay.errors import InvalidRequestError
from relay.subscriptions.config import FIELDS, credentials, masked_config, validate_config
from relay.subscriptions.urls import MASK, masked_url, origin

SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="
URL = "https://h.example.com/hook"
CUSTOM = '{ "ISTIO_USER_KEY": "hunter2", "X-Team": "ops" }'
# an Unleash webhook addon's parameters, as Unleash's own tests write them
UNLEASH_PARAMS = {
    "url": URL,
    "bodyTemplate": "{{event.type}} on toggle {{event.data.name}}",
    "contentType": "text/plain",
    "authorization": "API KEY 123abc",
    "customHeaders": '{ "MY_CUSTOM_HEADER": "MY_CUSTOM_VALUE" }',
}
STORED = {
    "url": URL,
    "secret": SECRET,
    "format": "unleash",
    "headers": {"X-Api-Key": "key-0123456789"},
    "contentType": "text/plain; charset=utf-8",
    "authorization": "Bearer tok-0123456789",
    "customHeaders": CUSTOM,
    "bodyTemplate": '{"type": "{{event.type}}", "json": {{{eventJson}}}}',
}


def problems_of(raw: object, stored: dict[str, object] | None = None) -> list[str]:
    """The attributes a 400 names for `raw`."""
    with pytest.raises(InvalidRequestError) as caught:
        validate_config(raw, stored=stored)
    return [problem.attribute for problem in caught.value.errors]


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
        ({"url": "https://h.example.com", "authorization": MASK}, "config.authorization"),
        ({"url": "https://h.example.com", "customHeaders": MASK}, "config.customHeaders"),
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


def test_fields_are_relays_and_unleash_addon_parameters() -> None:
    """The accepted fields: relay's four, then Unleash's webhook addon parameters by name."""
    assert FIELDS == (
        "url",
        "secret",
        "format",
        "headers",
        "contentType",
        "authorization",
        "customHeaders",
        "bodyTemplate",
    )


def test_an_unleash_addon_config_moves_over_as_is() -> None:
    """Unleash's webhook parameters are accepted and stored verbatim."""
    config = validate_config(UNLEASH_PARAMS).config
    assert {name: config[name] for name in UNLEASH_PARAMS} == UNLEASH_PARAMS


def test_empty_addon_parameters_are_not_set() -> None:
    """An addon parameter given as "" is left out, as Unleash leaves it unused."""
    raw = {"url": URL, **dict.fromkeys(("contentType", "authorization", "customHeaders"), "")}
    config = validate_config({**raw, "bodyTemplate": ""}).config
    assert set(config) == {"url", "secret", "format", "headers"}


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/json",
        "application/vnd.api+json",
        "application/json; charset=utf-8",
        'multipart/form-data;boundary="a b\\"c"',
        "text/plain ; ; charset=utf-8",
    ],
)
def test_content_type_takes_a_media_type(content_type: str) -> None:
    """contentType holds any RFC 9110 media type, parameters included."""
    assert validate_config({"url": URL, "contentType": content_type}).config["contentType"] == (
        content_type
    )


@pytest.mark.parametrize(
    "content_type",
    [
        "json",
        "text/",
        "/plain",
        "text/plain;charset",
        'text/plain; charset="open',
        "text/plain ",
        "text/plain\r\nX-Evil: 1",
        "text/plaïn",
        "text/" + "x" * 252,
        42,
    ],
)
def test_content_type_refuses_what_is_not_a_media_type(content_type: object) -> None:
    """A contentType that is no media type (or is over 256 characters) is a 400 naming it."""
    assert problems_of({"url": URL, "contentType": content_type}) == ["config.contentType"]


@pytest.mark.parametrize(
    "authorization", ["Bearer a\nb", "Bearer é", " Bearer x", "x" * 1025, 7, ["Bearer x"]]
)
def test_authorization_follows_header_value_rules(authorization: object) -> None:
    """authorization is a header value: visible ASCII, at most 1024 characters."""
    assert problems_of({"url": URL, "authorization": authorization}) == ["config.authorization"]


@pytest.mark.parametrize(
    "custom",
    [
        "{not json",
        '["X-A", "1"]',
        '"X-A: 1"',
        '{"X-A": 1}',
        '{"X-A": {"nested": "v"}}',
        '{"bad name": "v"}',
        '{"Content-Type": "text/plain"}',
        '{"Webhook-Signature": "v1,forged"}',
        '{"X-A": "line\\nbreak"}',
        '{"X-A": "1", "X-A": "2"}',
        '{"X-A": "1", "x-a": "2"}',
        '{"X-A": "********"}',
        "[" * 30_000,
        "{" + ", ".join(f'"X-{n}": "v"' for n in range(21)) + "}",
        '{"X-A": "' + "v" * 33_000 + '"}',
        {"X-A": "1"},
    ],
)
def test_custom_headers_follow_the_rules_of_headers(custom: object) -> None:
    """customHeaders is Unleash's JSON string of an object of strings; any fault is a 400."""
    assert problems_of({"url": URL, "customHeaders": custom}) == ["config.customHeaders"]


def test_custom_headers_reason_names_the_fault() -> None:
    """A customHeaders 400 says what is wrong: where the JSON breaks, which name is bad."""
    with pytest.raises(InvalidRequestError) as caught:
        validate_config({"url": URL, "customHeaders": '{"ok": "1",\n "X-A" "2"}'})
    assert "line 2 column 8" in caught.value.errors[0].reason
    with pytest.raises(InvalidRequestError) as caught:
        validate_config({"url": URL, "customHeaders": '{"Host": "evil.example"}'})
    assert "'Host'" in caught.value.errors[0].reason


@pytest.mark.parametrize(
    ("template", "valid"),
    [
        ("{{event.type}} on toggle {{event.data.name}}", True),
        ('{"json": {{{eventJson}}}, "md": "{{eventMarkdown}}"}', True),
        ("{{#event.tags}}{{type}}:{{value}} {{/event.tags}}", True),
        ("{{#event.tags}}unclosed", False),
        ("{{event.type", False),
        ("{{/event}}", False),
        ("x" * (64 * 1024), True),
        ("x" * (64 * 1024 + 1), False),
        ("é" * (32 * 1024 + 1), False),
        (["{{event.type}}"], False),
    ],
)
def test_body_template_is_compiled_as_mustache(template: object, valid: bool) -> None:
    """bodyTemplate must compile as Mustache within 64 KB of UTF-8, else a 400 naming it."""
    raw = {"url": URL, "bodyTemplate": template}
    if valid:
        assert validate_config(raw).config["bodyTemplate"] == template
    else:
        assert problems_of(raw) == ["config.bodyTemplate"]


@pytest.mark.parametrize(
    "secret",
    ["my-very-secret-value-123", "s", "x" * 512, "with spaces and ünïcödé", "whsec", SECRET],
)
def test_plain_and_whsec_secrets_are_accepted(secret: str) -> None:
    """LaunchDarkly's plain secrets (1-512 printable characters) are valid, as whsec_ ones."""
    checked = validate_config({"url": URL, "secret": secret})
    assert checked.config["secret"] == secret and checked.secret_generated is False


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "x" * 513,
        "tab\tinside",
        "line\nbreak",
        "nul\x00",
        "no\u00a0break",
        "whsec_" + "QUJD",  # 3 bytes
        "whsec_" + "QUJD" * 30,  # 90 bytes
        "whsec_not base64 at all!",
        12345,
    ],
)
def test_secrets_that_cannot_sign_are_refused(secret: object) -> None:
    """Control characters, length past 512, and whsec_ secrets not of 24-64 bytes are a 400."""
    assert problems_of({"url": URL, "secret": secret}) == ["config.secret"]


def test_masked_config_hides_authorization_and_custom_headers() -> None:
    """authorization and the whole customHeaders string are masked; the rest is shown."""
    shown = masked_config(STORED)
    assert shown["authorization"] == MASK and shown["customHeaders"] == MASK
    assert shown["contentType"] == STORED["contentType"]
    assert shown["bodyTemplate"] == STORED["bodyTemplate"]


def test_credentials_list_authorization_and_each_custom_header_value() -> None:
    """Redaction learns every stored credential, customHeaders values one by one."""
    assert set(credentials(STORED)) == {
        SECRET,
        "key-0123456789",
        "Bearer tok-0123456789",
        "hunter2",
        "ops",
    }


def test_masked_addon_credentials_written_back_keep_their_values() -> None:
    """A whole config written back as shown resolves to the stored one, addon fields too."""
    checked = validate_config(masked_config(STORED), stored=STORED)
    assert checked.config == STORED


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://h.example.com/elsewhere", []),
        ("https://other.example.com/hook", ["config.authorization", "config.customHeaders"]),
        ("http://h.example.com/hook", ["config.authorization", "config.customHeaders"]),
    ],
)
def test_stored_addon_credentials_stay_at_their_origin(url: str, refused: list[str]) -> None:
    """A masked authorization or customHeaders is kept only while the origin stays."""
    raw = {"url": url, "secret": MASK, "authorization": MASK, "customHeaders": MASK}
    stored = {"url": URL, "secret": SECRET, "authorization": "Bearer t", "customHeaders": CUSTOM}
    if refused:
        assert problems_of(raw, stored) == refused
    else:
        config = validate_config(raw, stored=stored).config
        assert (config["authorization"], config["customHeaders"]) == ("Bearer t", CUSTOM)


def test_addon_credentials_given_again_may_move() -> None:
    """Given in full, authorization and customHeaders follow the URL to a new origin."""
    raw = {"url": "https://new.example.com", "authorization": "Bearer n", "customHeaders": "{}"}
    stored = {"url": URL, "secret": SECRET, "authorization": "Bearer t", "customHeaders": CUSTOM}
    config = validate_config(raw, stored=stored).config
    assert (config["authorization"], config["customHeaders"]) == ("Bearer n", "{}")


@pytest.mark.parametrize(
    ("raw", "attribute"),
    [
        ({"authorization": "Bearer a", "headers": {"authorization": "Bearer b"}}, "authorization"),
        ({"customHeaders": '{"X-A": "1"}', "headers": {"x-a": "2"}}, "customHeaders"),
        ({"authorization": "Bearer a", "customHeaders": '{"Authorization": "b"}'}, "customHeaders"),
    ],
)
def test_a_header_is_set_in_one_place(raw: dict[str, object], attribute: str) -> None:
    """A header name in two of headers, authorization and customHeaders is a 400."""
    assert problems_of({"url": URL, **raw}) == [f"config.{attribute}"]
