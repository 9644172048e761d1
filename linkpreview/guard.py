"""The SSRF guard: which URLs the OpenGraph fetcher may open, and at which addresses.

A URL passes when it is http(s), carries no user name or password, and every address its host
resolves to is public — or the operator lists the host or the address in ``LINKPREVIEW_ALLOW``
(``10.1.2.0/24,wiki.corp``): previews of intranet pages are the point, so allowing them is one
explicit setting. IP literals in the odd forms a browser or ``getaddrinfo`` accepts (``2130706433``,
``0177.0.0.1``, ``0x7f.1``, ``127.1``) are read the same way here, then judged as the address they are.

What is refused, and why (our choices where the registries leave room):

- IPv4: this network, private, carrier-grade NAT (100.64.0.0/10: cloud-internal services live
  there), loopback, link-local, IETF protocol, documentation, benchmarking, multicast, reserved and
  broadcast ranges;
- IPv6: unspecified, loopback, IPv4-compatible (deprecated), discard, Teredo, documentation,
  unique-local, site-local, link-local, multicast, and anything else not globally routable;
  IPv4-mapped addresses are judged as the IPv4 address they carry, and so are 6to4 (2002::/16)
  and NAT64 (64:ff9b::/96), whose gateways would carry the request to that address;
- the cloud metadata addresses (169.254.169.254, fd00:ec2::254) always: no allow entry opens them.

The fetcher connects to the addresses checked here, never to a fresh lookup (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

SCHEMES = {"http": 80, "https": 443}
METADATA = frozenset(map(ipaddress.ip_address, ("169.254.169.254", "fd00:ec2::254")))

_V4_BLOCKED = [(ipaddress.IPv4Network(net), why) for net, why in (
    ("0.0.0.0/8", "this-network"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT (shared)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay (reserved)"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved or broadcast"),
)]
_V6_BLOCKED = [(ipaddress.IPv6Network(net), why) for net, why in (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/32", "Teredo"),
    ("2001:db8::/32", "documentation"),
    ("fc00::/7", "unique-local"),
    ("fec0::/10", "site-local"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
)]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_ODD_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")


class FetchRefused(Exception):
    """The guard (or a fetch cap) will not let this URL be fetched; ``reason`` says what and why.

    The reason names hosts and addresses only: never a query string, a password or a header value.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``addresses``, all checked) and what to ask for."""

    scheme: str
    host: str
    port: int
    addresses: list[str]
    path_with_query: str

    @property
    def netloc(self) -> str:
        """``host[:port]`` as it goes in a URL and the ``Host`` header; the default port left out."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == SCHEMES[self.scheme] else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The URL rebuilt from its checked parts, without a fragment."""
        return f"{self.scheme}://{self.netloc}{self.path_with_query}"


class FetchPolicy:
    """Which hosts and addresses may be fetched beyond the public internet, and how names resolve.

    ``allow`` holds networks or single addresses (``10.1.2.0/24``, ``127.0.0.1``) and host names
    (``wiki.corp`` covers its subdomains too); a listed name is trusted whatever it resolves to,
    except a metadata address. ``resolver(host, port)`` returns every address of a name; the
    default asks ``getaddrinfo`` for all A and AAAA records.
    """

    def __init__(self, allow: Iterable[str] = (), resolver: Resolver | None = None) -> None:
        self.networks: list[Network] = []
        self.names: list[str] = []
        entries = allow.split(",") if isinstance(allow, str) else allow
        for entry in filter(str.strip, entries):
            network, name = _allow_entry(entry)
            if network is not None:
                self.networks.append(network)
            if name is not None:
                self.names.append(name)
        self.resolver = resolver or _getaddrinfo

    @classmethod
    def from_setting(cls, value: str, resolver: Resolver | None = None) -> FetchPolicy:
        """The policy for ``LINKPREVIEW_ALLOW``: comma-separated entries; raises ValueError naming a bad one."""
        return cls(value.split(","), resolver)

    def __repr__(self) -> str:
        return f"<FetchPolicy allow={[*map(str, self.networks), *self.names]}>"

    def allows_name(self, host: str) -> bool:
        """Whether ``host`` is a listed name or a subdomain of one."""
        return any(host == name or host.endswith("." + name) for name in self.names)

    def allows_address(self, address: Address) -> bool:
        """Whether ``address`` lies in a listed network."""
        return any(address.version == network.version and address in network for network in self.networks)

    def check(self, url: str) -> Target:
        """The :class:`Target` for ``url`` if it may be fetched; raises :class:`FetchRefused` saying why not."""
        scheme, host, port, path = _split(url)
        literal = _ip_literal(host)
        if literal is not None:
            host, addresses = str(literal), [literal]
        else:
            addresses = self._resolve(host, port)
        for address in addresses:
            self._judge(host, address)
        return Target(scheme, host, port, [str(address) for address in addresses], path)

    def _resolve(self, host: str, port: int) -> list[Address]:
        try:
            found = self.resolver(host, port)
        except (OSError, UnicodeError) as error:
            raise FetchRefused(f"{host} could not be resolved ({error.__class__.__name__})") from None
        addresses = []
        for raw in found:
            try:
                addresses.append(_unmapped(ipaddress.ip_address(raw)))
            except ValueError:
                raise FetchRefused(f"{host} resolved to {raw!r}, which is not an IP address") from None
        if not addresses:
            raise FetchRefused(f"{host} resolved to no address")
        return list(dict.fromkeys(addresses))

    def _judge(self, host: str, address: Address) -> None:
        shown = host if host == str(address) else f"{host} resolves to {address}, which"
        if address in METADATA:
            raise FetchRefused(f"{shown} is the cloud metadata address: never fetched")
        if self.allows_address(address) or self.allows_name(host):
            return
        why = blocked(address)
        if why is not None:
            raise FetchRefused(f"{shown} is not public ({why}); list it in LINKPREVIEW_ALLOW to preview it")


def blocked(address: Address) -> str | None:
    """Why ``address`` may not be fetched unless allowed (``"private"``, ``"loopback"``...); None if public."""
    address = _unmapped(address)
    if address.version == 4:
        return next((why for network, why in _V4_BLOCKED if address in network), None)
    for network, why in _V6_BLOCKED:
        if address in network:
            return why
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        inner = blocked(embedded)
        return f"carries the {inner} IPv4 address {embedded}" if inner else None
    if address.is_reserved or address.is_private or not address.is_global:
        return "reserved or not globally routable"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a 6to4 or NAT64 address routes to, if it is one."""
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _unmapped(address: Address) -> Address:
    """``::ffff:a.b.c.d`` is ``a.b.c.d`` on the wire: judge and connect to it as such."""
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _split(url: str) -> tuple[str, str, int, str]:
    """Scheme, normalised host, port and path-with-query of ``url``; refuses what is not a plain http(s) URL."""
    if not isinstance(url, str) or _ODD_CHARACTERS.search(url):
        raise FetchRefused("the URL contains whitespace, control characters or a backslash")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise FetchRefused(f"the URL is malformed ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise FetchRefused(f"only http and https URLs are fetched, not {scheme or 'a URL without a scheme'}")
    if "@" in parts.netloc:
        raise FetchRefused("the URL carries a user name or password")
    if port is None:
        port = SCHEMES[scheme]
    if not 1 <= port <= 65535:
        raise FetchRefused(f"port {port} is outside 1-65535")
    host = _host(parts.hostname or "")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port, path


def _host(raw: str) -> str:
    """``raw`` as an ASCII, lower-case host without a trailing dot; refuses what is not a host name or IP."""
    if not raw:
        raise FetchRefused("the URL has no host")
    if ":" in raw:
        if "%" in raw:
            raise FetchRefused("IPv6 addresses with a zone index are not fetched")
        return raw
    try:
        host = raw.encode("idna").decode("ascii").lower() if not raw.isascii() else raw.lower()
    except UnicodeError:
        raise FetchRefused(f"{raw!r} is not a valid host name") from None
    host = host[:-1] if host.endswith(".") else host
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise FetchRefused(f"{host!r} is not a valid host name")
    return host


def _ip_literal(host: str) -> Address | None:
    """The address ``host`` names if it is an IP literal in any form a browser accepts, else None."""
    if ":" in host:
        try:
            return _unmapped(ipaddress.IPv6Address(host))
        except ValueError:
            raise FetchRefused(f"[{host}] is not a valid IPv6 address") from None
    parts = host.split(".")
    if not (parts[-1].isdigit() or _ipv4_part(parts[-1]) is not None):
        return None
    read = [_ipv4_part(part) for part in parts]
    numbers = [number for number in read if number is not None]
    if len(parts) > 4 or len(numbers) < len(read) or any(n > 255 for n in numbers[:-1]) \
            or numbers[-1] >= 256 ** (5 - len(parts)):
        raise FetchRefused(f"{host} looks like an IPv4 address but is not a valid one")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_part(part: str) -> int | None:
    """One dot-separated part of an IPv4 literal: decimal, octal (leading 0) or hex (0x); None if not a number."""
    try:
        if part[:2] in ("0x", "0X"):
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part.startswith("0"):
            return int(part[1:], 8)
        return int(part, 10) if part.isdigit() else None
    except ValueError:
        return None


def _allow_entry(entry: str) -> tuple[Network | None, str | None]:
    """One ``LINKPREVIEW_ALLOW`` entry as a network or a host name; ValueError names a bad entry."""
    text = entry.strip().lower()
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return ipaddress.ip_network(bare), None
    except ValueError as error:
        if "host bits" in str(error):
            wider = ipaddress.ip_network(bare, strict=False)
            raise ValueError(f"{entry!r} has host bits set: did you mean {wider}?") from None
    if ":" not in bare:
        try:
            if _ip_literal(bare) is None:
                return None, _host(bare)
        except FetchRefused:
            pass
    raise ValueError(f"{entry!r} is not an IP address, network or host name (such as 10.1.2.0/24 or wiki.corp)")


def _getaddrinfo(host: str, port: int) -> list[str]:
    """Every A and AAAA address of ``host``, in the order the system resolver gives them."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
