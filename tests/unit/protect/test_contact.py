from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bastion.protect.detect.recognizers.contact import email_score, ip_score, phone_score

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.protect.detect import Detector
    from conftest import Found


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("write to john.doe@example.com today", "john.doe@example.com"),
        ("cc: a+tag@mail.sub.example.co.uk.", "a+tag@mail.sub.example.co.uk"),
        ("UtaKortig@jourrapide.com", "UtaKortig@jourrapide.com"),
        ("(mail:jane_o'neil@example.org)", "neil@example.org"),  # an apostrophe is not part of the local part here
        ("...jane@example.org", "jane@example.org"),  # leading dots are not part of an address
        ("john..doe@example.com", None),  # two dots in a row
        ("john@example", None),  # no top-level domain
        ("john@-example.com", None),  # a label starting with a dash
        ("version@2.0.1", None),  # a numeric "TLD"
        ("@example.com", None),
    ],
)
def test_email(found: Found, text: str, value: str | None) -> None:
    expected = [("EMAIL_ADDRESS", value, "email")] if value else []
    assert found(text) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("call +1 415-555-0132 now", "+1 415-555-0132"),
        ("call (415) 555-2671", "(415) 555-2671"),
        ("tel 415.555.2671", "415.555.2671"),
        ("tel: +44 20 7946 0018", "+44 20 7946 0018"),
        ("Büro: 030 901820", "030 901820"),
        ("Mobile: 06 12 34 56 78", "06 12 34 56 78"),
        ("phone 345-899-3560x4587 please", "345-899-3560x4587"),
        ("phone 415-555-2671 ext. 42 please", "415-555-2671 ext. 42"),
        ("dial 001-518-640-0854", "001-518-640-0854"),
        ("call 123-456-7890", None),  # no US area code starts with 1
        ("the 2024-01-31 release", None),  # a date
        ("ref 078-05-1120", None),  # shaped like an SSN
        ("page 12 34 56 78", None),  # French digits without the trunk 0 people write
        ("id 4155552671", None),  # bare digits need a word like "phone"
        ("phone 4155552671", "4155552671"),
        ("order 415-555-2671", None),  # "order" takes the score under the minimum
        ("total 57.38219372938472", None),  # a decimal number
    ],
)
def test_phone(found: Found, text: str, value: str | None) -> None:
    expected = [("PHONE_NUMBER", value, "phone")] if value else []
    assert found(text) == expected


@pytest.mark.parametrize(
    ("text", "value", "recognizer"),
    [
        ("host 192.168.1.10 is down", "192.168.1.10", "ipv4"),
        ("from 8.8.8.8.", "8.8.8.8", "ipv4"),
        ("client 2001:db8::ff00:42:8329 connected", "2001:db8::ff00:42:8329", "ipv6"),
        ("ping fe80::1 now", "fe80::1", "ipv6"),
        ("addr ::ffff:192.0.2.128 mapped", "::ffff:192.0.2.128", "ipv6"),
        ("ipv6 6e40:4041:c617:e898:c11:40d2:c669:2eb4", "6e40:4041:c617:e898:c11:40d2:c669:2eb4", "ipv6"),
        ("at 256.1.1.1", None, None),  # an octet over 255
        ("build 1.2.3.4.5", None, None),  # glued to more numbers
        ("v 01.02.03.04", None, None),  # leading zeros
        ("at 12:30:45", None, None),  # a time
        ("std::deque<int> and Foo::Bar", None, None),  # C++ and Ruby scopes
        ("mac 00:1A:2B:3C:4D:5E", None, None),
    ],
)
def test_ip_address(found: Found, text: str, value: str | None, recognizer: str | None) -> None:
    expected = [("IP_ADDRESS", value, recognizer)] if value else []
    assert [item for item in found(text) if item[0] == "IP_ADDRESS"] == expected


def test_a_version_string_is_still_an_ip_address_with_a_lower_score(detector: Detector) -> None:
    (plain,) = detector.scan("connect to 1.2.3.4 now")
    (versioned,) = detector.scan("upgrade to version 1.2.3.4 now")
    assert (plain.type, versioned.type) == ("IP_ADDRESS", "IP_ADDRESS")
    assert versioned.score < plain.score
    assert versioned.score == 0.5


@pytest.mark.parametrize(
    ("validate", "value", "valid"),
    [
        (email_score, "a@b.co", True),
        (email_score, "a" * 65 + "@example.com", False),
        (email_score, "a@" + "b" * 64 + ".com", False),
        (phone_score, "+1 650-253-0000", True),
        (phone_score, "+1 650-253-000", False),
        (phone_score, "650-253-0000-1234-5678-9012", False),
        (ip_score, "10.0.0.1", True),
        (ip_score, "10.0.0", False),
    ],
)
def test_validators(validate: Callable[[str], float | None], value: str, valid: bool) -> None:
    assert (validate(value) is not None) is valid
