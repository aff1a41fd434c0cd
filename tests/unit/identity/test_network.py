from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.identity.model import networks
from bastion.identity.network import client_address, parse_address, within

TRUSTED = networks(["10.0.0.0/8", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # untrusted peer: the header is ignored
        ("10.1.2.3", "198.51.100.7", "198.51.100.7"),
        ("10.1.2.3", "6.6.6.6, 198.51.100.7, 10.9.9.9", "198.51.100.7"),  # right-most untrusted hop
        ("10.1.2.3", "10.2.2.2, 10.3.3.3", "10.2.2.2"),  # every hop trusted: the left-most
        ("10.1.2.3", "garbage, 198.51.100.7", "198.51.100.7"),
        ("10.1.2.3", "198.51.100.7, garbage", "10.1.2.3"),
        ("fd00::1", "2001:db8::5", "2001:db8::5"),
        ("::ffff:10.0.0.1", "192.0.2.1", "192.0.2.1"),  # IPv4-mapped peer counts as IPv4
        ("10.1.2.3", "[2001:db8::9]", "2001:db8::9"),
        (None, "1.2.3.4", None),
        ("not-an-ip", None, None),
    ],
)
def test_client_address(peer: str | None, header: str | None, expected: str | None) -> None:
    found = client_address(peer, header, TRUSTED)
    assert (str(found) if found else None) == expected


@pytest.mark.parametrize(
    ("address", "cidrs", "inside"),
    [
        ("10.0.1.7", ["10.0.1.0/24"], True),
        ("10.0.10.7", ["10.0.1.0/24"], False),  # a string prefix would say yes
        ("100.0.1.7", ["10.0.1.0/24"], False),
        ("2001:db8::1", ["2001:db8::/32"], True),
        ("2001:db9::1", ["2001:db8::/32"], False),
        ("10.0.1.7", ["2001:db8::/32"], False),
        ("192.0.2.7", ["192.0.2.7/32"], True),
    ],
)
def test_within_uses_cidr_maths(address: str, cidrs: list[str], inside: bool) -> None:
    parsed = parse_address(address)
    assert parsed is not None
    assert within(parsed, networks(cidrs)) is inside


@given(st.ip_addresses(), st.lists(st.ip_addresses(), max_size=5))
def test_an_untrusted_peer_is_never_overridden(
    peer: ipaddress.IPv4Address | ipaddress.IPv6Address, hops: list[object]
) -> None:
    if within(peer, TRUSTED) or (isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped):
        return
    header = ", ".join(str(hop) for hop in hops)
    assert client_address(str(peer), header, TRUSTED) == peer
