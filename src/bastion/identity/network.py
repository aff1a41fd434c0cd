"""Where a request comes from: the client address behind trusted proxies, and CIDR allowlists.

``X-Forwarded-For`` is believed only when the connection comes from a configured trusted proxy,
and then only up to the first hop that is not a trusted proxy (read right to left), so a client
cannot choose its own address by sending the header. All comparisons are CIDR maths with
``ipaddress``; IPv4-mapped IPv6 addresses (``::ffff:10.0.0.1``) count as their IPv4 address.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bastion.identity.model import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> IPAddress | None:
    """An address from a socket peer or a header hop; None when it is not an IP address."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def within(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[IPNetwork]) -> IPAddress | None:
    """The client's address: the peer, or, if the peer is a trusted proxy, the right-most untrusted hop."""
    address = parse_address(peer) if peer else None
    if address is None or not forwarded_for or not within(address, trusted):
        return address
    for hop in reversed(forwarded_for.split(",")):
        candidate = parse_address(hop)
        if candidate is None:
            return address  # a malformed hop: trust nothing further left of it
        address = candidate
        if not within(address, trusted):
            return address
    return address
