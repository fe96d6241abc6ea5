"""The destination guard: which webhook URLs and addresses the relay refuses."""

from __future__ import annotations

import pytest

from relay.destinations import (
    DestinationError,
    UnresolvableHostError,
    check_destination,
    resolve_allowed,
)
from relay.errors import RelayError
from relay.settings import Settings

STRICT = Settings(allow_private_destinations=False, allowed_destination_cidrs=[])

# (address, words the refusal must contain)
REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "CGNAT"),
    ("100.127.255.255", "CGNAT"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "this network"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("192.0.0.8", "IETF"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("fe80::1", "link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("100::1", "discard-only"),
    ("::7f00:1", "non-public"),
    ("::ffff:127.0.0.1", "loopback address inside an IPv6"),
    ("::ffff:10.0.0.1", "private address inside an IPv6"),
    ("::ffff:169.254.169.254", "link-local address inside an IPv6"),
    ("64:ff9b::7f00:1", "loopback address inside an IPv6"),
    ("2002:7f00:1::1", "loopback address inside an IPv6"),
    ("2002:c0a8:101::1", "private address inside an IPv6"),
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "11.0.0.1",
    "172.32.0.1",
    "100.128.0.1",
    "192.169.0.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001::1",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


def url_for(address: str, scheme: str = "https") -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{scheme}://{host}/hooks/relay"


@pytest.mark.parametrize(("address", "words"), REFUSED)
def test_refuses_non_public_addresses(address: str, words: str) -> None:
    """A URL whose host is a non-public address is refused with the kind of address named."""
    with pytest.raises(DestinationError) as info:
        check_destination(url_for(address), settings=STRICT)
    assert words in info.value.reason
    assert address in info.value.reason


@pytest.mark.parametrize(("address", "words"), REFUSED)
def test_connect_time_check_refuses_the_same_addresses(address: str, words: str) -> None:
    """resolve_allowed, used when a worker connects, refuses what check_destination refuses."""
    with pytest.raises(DestinationError, match=words.split()[0]):
        resolve_allowed(address, 443, settings=STRICT)


@pytest.mark.parametrize("address", ALLOWED)
def test_accepts_public_addresses(address: str) -> None:
    """A URL whose host is a public address passes, and resolves to that address."""
    check_destination(url_for(address), settings=STRICT)
    assert resolve_allowed(address, 443, settings=STRICT) == [address]


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST", "2130706433", "0x7f000001", "127.1", "0177.0.0.1"]
)
def test_refuses_host_names_and_numeric_forms_that_reach_loopback(host: str) -> None:
    """Names and odd numeric spellings are resolved first, so they cannot hide loopback."""
    with pytest.raises(DestinationError, match="loopback"):
        check_destination(f"http://{host}:8080/", settings=STRICT)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://8.8.8.8/hook", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("javascript:alert(1)", "only http and https"),
        ("8.8.8.8/hook", "only http and https"),
        ("http:///hook", "no host"),
        ("https://", "no host"),
        ("http://[::1/hook", "not a valid URL"),
        ("http://8.8.8.8:99999/hook", "not a valid URL"),
    ],
)
def test_refuses_urls_that_are_not_http_with_a_host(url: str, words: str) -> None:
    """Only http(s) URLs with a host and a valid port are destinations."""
    with pytest.raises(DestinationError, match=words):
        check_destination(url, settings=STRICT)


def test_scheme_is_case_insensitive() -> None:
    """`HTTPS://` is https."""
    check_destination("HTTPS://8.8.8.8/hook", settings=STRICT)


def test_unresolvable_host_is_refused() -> None:
    """A host that does not resolve is refused with its own error type, still a DestinationError."""
    with pytest.raises(UnresolvableHostError, match=r"cannot resolve no-such-host\.invalid"):
        check_destination("https://no-such-host.invalid/hook", settings=STRICT)


def test_destination_error_is_a_relay_error_with_a_reason() -> None:
    """Callers catch it as a RelayError and show its reason."""
    with pytest.raises(RelayError) as info:
        check_destination("http://10.0.0.1/", settings=STRICT)
    assert isinstance(info.value, DestinationError)
    assert info.value.reason == str(info.value)


@pytest.mark.parametrize(
    ("cidrs", "address", "allowed"),
    [
        (["10.0.0.0/8"], "10.1.2.3", True),
        (["10.0.0.0/8"], "192.168.1.1", False),
        (["10.1.2.3/32"], "10.1.2.4", False),
        (["127.0.0.0/8"], "127.0.0.1", True),
        (["127.0.0.0/8"], "::ffff:127.0.0.1", True),
        (["127.0.0.0/8"], "::1", False),
        (["::1/128"], "::1", True),
        (["fd00::/8"], "fd12:3456::1", True),
        (["fd00::/8"], "fc00::1", False),
        (["169.254.169.254/32"], "169.254.169.254", True),
    ],
)
def test_allowed_cidrs_lift_the_guard_for_listed_addresses_only(
    cidrs: list[str], address: str, allowed: bool
) -> None:
    """allowed_destination_cidrs opens exactly the listed ranges (IPv4-mapped forms included)."""
    settings = Settings(allow_private_destinations=False, allowed_destination_cidrs=cidrs)
    if allowed:
        assert resolve_allowed(address, 80, settings=settings) == [address]
    else:
        with pytest.raises(DestinationError):
            resolve_allowed(address, 80, settings=settings)


def test_allowed_cidrs_apply_to_resolved_names() -> None:
    """A name resolving into an allowed range passes, with its resolved addresses returned."""
    settings = Settings(allowed_destination_cidrs=["127.0.0.0/8", "::1/128"])
    check_destination("http://localhost:8080/hook", settings=settings)
    addresses = resolve_allowed("localhost", 8080, settings=settings)
    assert addresses and set(addresses) <= {"127.0.0.1", "::1"}


@pytest.mark.parametrize("address", ["127.0.0.1", "169.254.169.254", "10.0.0.1", "::1"])
def test_allow_private_destinations_lifts_the_address_guard(address: str) -> None:
    """With allow_private_destinations (local testing) every address passes."""
    settings = Settings(allow_private_destinations=True)
    check_destination(url_for(address, "http"), settings=settings)
    assert resolve_allowed(address, 80, settings=settings) == [address]


def test_allow_private_destinations_still_requires_http() -> None:
    """The flag lifts the address guard, not the scheme rule."""
    with pytest.raises(DestinationError, match="only http and https"):
        check_destination("gopher://127.0.0.1/", settings=Settings(allow_private_destinations=True))
