"""The destination guard: which URLs and addresses the relay may connect to.

It guards every outbound request: webhook deliveries and pulls from Unleash servers
(which carry an admin token). A subscription or pull-source URL is checked when it is
created or changed (`check_destination`) and again each time the workers open a
connection (`resolve_allowed`), because DNS answers change between the two (rebinding).
Loopback, private, link-local, shared (CGNAT), multicast, reserved and documentation
addresses are refused, including IPv4 addresses smuggled inside IPv6 ones (IPv4-mapped,
NAT64, 6to4), unless the settings allow private destinations or list the address in
`allowed_destination_cidrs`.

One exception is narrower than those settings: a subscription the CLI made for `relay
listen` carries its listener's origin (`http://127.0.0.1:9876`) as a mark, and a URL at
exactly that origin, plain HTTP to a literal loopback address, is let through for it
(`reaches_listener`). The API never sets the mark and a changed URL drops it
(relay/store/subscriptions.py), so a writer cannot aim a subscription at a local service.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Final
from urllib.parse import urlsplit

from relay.errors import RelayError
from relay.settings import Settings

__all__ = [
    "GUARD_HINT",
    "LOOPBACK_HOSTS",
    "DestinationError",
    "UnresolvableHostError",
    "address_problem",
    "check_destination",
    "listener_origin",
    "reaches_listener",
    "resolve_allowed",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SCHEMES = {"http": 80, "https": 443}
# the literal addresses a `relay listen` binds; a name (localhost) would need a resolver's word
LOOPBACK_HOSTS: Final = ("127.0.0.1", "::1")
# said after a refusal, so the operator knows the two ways to open the guard
GUARD_HINT = (
    "private addresses are allowed only with RELAY_ALLOW_PRIVATE_DESTINATIONS=true "
    "or when listed in RELAY_ALLOWED_DESTINATION_CIDRS"
)


def _networks(*rows: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(cidr), label) for cidr, label in rows)


# Order matters only for the label: the most specific range comes first.
_FORBIDDEN = _networks(
    ("0.0.0.0/32", "an unspecified address"),
    ("0.0.0.0/8", "a 'this network' address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a shared (CGNAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol assignment address"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a 6to4 relay anycast address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "a broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
    ("2001::/23", "an IETF protocol assignment address"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("fc00::/7", "a unique local (private) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class DestinationError(RelayError):
    """A destination the relay refuses to connect to; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnresolvableHostError(DestinationError):
    """The destination's host name does not resolve (possibly only for now)."""


def check_destination(url: str, *, settings: Settings) -> None:
    """Refuse a subscription URL that is not http(s) or resolves to a forbidden address."""
    host, port = _host_and_port(url)
    if settings.allow_private_destinations:
        return
    resolve_allowed(host, port, settings=settings)


def resolve_allowed(host: str, port: int, *, settings: Settings) -> list[str]:
    """The addresses `host` resolves to; DestinationError if any of them is forbidden."""
    addresses = _resolve(host, port)
    for address in addresses:
        problem = address_problem(address, settings=settings)
        if problem is not None:
            shown = host if host == address else f"{host} resolves to {address}, which"
            raise DestinationError(f"{shown} is {problem}")
    return addresses


def listener_origin(host: str, port: int) -> str:
    """`http://127.0.0.1:9876`: the mark of a listener bound to `host`:`port`."""
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"a listener binds a loopback address, not {host!r}")
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def reaches_listener(url: str, mark: str | None) -> bool:
    """True when `url` is at the listener origin `mark` (plain HTTP, literal loopback)."""
    if not mark:
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = parts.hostname
    if parts.scheme != "http" or host not in LOOPBACK_HOSTS or port is None:
        return False
    if parts.username is not None or parts.password is not None:
        return False
    return listener_origin(host, port) == mark


def address_problem(address: str, *, settings: Settings) -> str | None:
    """Why `address` is refused (`"a loopback address"`), or None when it is allowed."""
    ip = ipaddress.ip_address(address.partition("%")[0])
    if settings.allow_private_destinations or _listed(ip, settings.allowed_destination_cidrs):
        return None
    return _forbidden_label(ip)


def _host_and_port(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise DestinationError(f"not a valid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise DestinationError("only http and https URLs are allowed")
    if not parts.hostname:
        raise DestinationError("the URL has no host")
    return parts.hostname, port if port is not None else _SCHEMES[scheme]


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnresolvableHostError(f"cannot resolve {host}: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise UnresolvableHostError(f"cannot resolve {host}: no addresses")
    return addresses


def _listed(ip: IPAddress, cidrs: list[str]) -> bool:
    candidates = {ip, _embedded_ipv4(ip) or ip}
    networks = [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]
    return any(candidate in network for candidate in candidates for network in networks)


def _forbidden_label(ip: IPAddress) -> str | None:
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        inner = _forbidden_label(embedded)
        return None if inner is None else f"{inner} inside an IPv6 one"
    for network, label in _FORBIDDEN:
        if ip in network:
            return label
    # Whatever the table misses, the standard library's registry still knows.
    return None if ip.is_global and not ip.is_reserved else "a reserved or non-public address"


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, NAT64 or 6to4 address reaches, if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour
