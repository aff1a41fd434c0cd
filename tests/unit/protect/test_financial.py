from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bastion.protect.detect.recognizers.financial import card_score, iban_score, routing_score

if TYPE_CHECKING:
    from conftest import Found


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("card 4111 1111 1111 1111 exp 12/27", "4111 1111 1111 1111"),
        ("card 4111-1111-1111-1111.", "4111-1111-1111-1111"),
        ("card 4111.1111.1111.1111", "4111.1111.1111.1111"),
        ("card 4111\n1111\n1111\n1111", "4111\n1111\n1111\n1111"),
        ("4111111111111111", "4111111111111111"),
        ("mc 5500 0000 0000 0004", "5500 0000 0000 0004"),
        ("amex 3400 000000 00009", "3400 000000 00009"),
        ("discover 6011000990139424", "6011000990139424"),
        ("visa 4131034282458809939", "4131034282458809939"),  # 19 digits
        ("maestro 630427373398", "630427373398"),  # 12 digits
        ("card 4111 1111 1111 1111 123", "4111 1111 1111 1111"),  # a CVV after it
        ("unit 12 4111 1111 1111 1111", "4111 1111 1111 1111"),  # a short number before it
        ("row 2024 4111 1111 1111 1111 5678", None),  # inside a row of four-digit numbers: data
        ("card 4111 1111 1111 1112", None),  # Luhn fails
        ("ref 1234 5678 9012 3452", None),  # Luhn passes, but no issuer uses 1234
        ("zeros 0000 0000 0000 0000", None),
        ("amex 3400 000000 0000", None),  # 14 digits: not an Amex length
        ("pi 3.141592653589793238", None),  # a decimal number
        ("id 94111111111111111111", None),  # glued into a longer number
    ],
)
def test_credit_card(found: Found, text: str, value: str | None) -> None:
    expected = [("CREDIT_CARD", value, "credit_card")] if value else []
    assert [item for item in found(text) if item[0] == "CREDIT_CARD"] == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("IBAN DE89 3704 0044 0532 0130 00 please", "DE89 3704 0044 0532 0130 00"),
        ("to GB82 WEST 1234 5698 7654 32 BIC WESTGB22", "GB82 WEST 1234 5698 7654 32"),
        ("to GB82WEST12345698765432.", "GB82WEST12345698765432"),
        ("lower gb42nawi04454264788619", "gb42nawi04454264788619"),
        ("FR14 2004 1010 0505 0001 3M02 606", "FR14 2004 1010 0505 0001 3M02 606"),
        ("IBAN DE89-3704-0044-0532-0130-00", "DE89-3704-0044-0532-0130-00"),
        ("IBAN DE89 3704 0044 0532 0130 01", None),  # mod 97 fails
        ("IBAN GB82 WEST 1234 5698 7654", None),  # too short for GB
        ("IBAN XX89 3704 0044 0532 0130 00", None),  # no such country
    ],
)
def test_iban(found: Found, text: str, value: str | None) -> None:
    expected = [("IBAN_CODE", value, "iban")] if value else []
    assert [item for item in found(text) if item[0] == "IBAN_CODE"] == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("routing number 021000021", "021000021"),
        ("ABA 011000015 for the wire", "011000015"),
        ("number 021000021", None),  # one nine-digit number in ten passes the checksum: context is needed
        ("routing number 021000022", None),  # checksum fails
        ("routing number 000000000", None),
    ],
)
def test_bank_routing(found: Found, text: str, value: str | None) -> None:
    expected = [("US_BANK_ROUTING", value, "aba_routing")] if value else []
    assert found(text) == expected


def test_validators_score_what_they_accept() -> None:
    assert card_score("4111111111111111") == 0.9
    assert card_score("4111111111111112") is None
    assert iban_score("DE89370400440532013000") == 0.95
    assert iban_score("DE89370400440532013001") is None
    assert routing_score("021000021") == 0.3
    assert routing_score("021000022") is None
