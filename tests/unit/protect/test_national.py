from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bastion.protect.detect.recognizers.national import nino_score, ssn_score

if TYPE_CHECKING:
    from conftest import Found


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("his number is 219-45-6789", "219-45-6789"),
        ("123-45-6789", "123-45-6789"),
        ("SSN: 219 45 6789", "219 45 6789"),
        ("social security number 219.45.6789", "219.45.6789"),
        ("ssn 219456789", "219456789"),  # bare digits, but "ssn" says what they are
        ("number 219456789", None),  # bare digits alone are too weak
        ("SSN 078-05-1120", None),  # the Woolworth wallet card
        ("SSN 219-09-9999", None),  # an advertised number
        ("SSN 457-55-5462", None),
        ("SSN 000-12-3456", None),  # area 000
        ("SSN 666-12-3456", None),  # area 666
        ("SSN 900-12-3456", None),  # area 9xx
        ("SSN 123-00-4567", None),  # group 00
        ("SSN 123-45-0000", None),  # serial 0000
        ("SSN 111-11-1111", None),  # one digit repeated
        ("SSN 219-45 6789", None),  # two different separators
    ],
)
def test_us_ssn(found: Found, text: str, value: str | None) -> None:
    expected = [("US_SSN", value, "us_ssn")] if value else []
    assert found(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NINO AB123456C", [("UK_NINO", "AB123456C", "uk_nino")]),
        ("ni number: ab 12 34 56 c", [("UK_NINO", "ab 12 34 56 c", "uk_nino")]),
        ("NINO QQ123456C", []),  # Q never starts one
        ("NINO BG123456A", []),  # BG is not issued
        ("NINO AO123456A", []),  # O is never the second letter
        ("NINO AB123456E", []),  # the suffix is A to D
        ("Steuer-ID: 36574261809", [("DE_TAX_ID", "36574261809", "de_tax_id")]),
        ("Steueridentifikationsnummer 36 574 261 809", [("DE_TAX_ID", "36 574 261 809", "de_tax_id")]),
        ("Steuer-ID: 36574261808", []),  # check digit fails
        ("Rechnung 36574261809", []),  # eleven digits without context
        ("NIR 2 95 10 99 126 111 93", [("FR_NIR", "2 95 10 99 126 111 93", "fr_nir")]),
        ("NIR 295109912611193", [("FR_NIR", "295109912611193", "fr_nir")]),
        ("NIR 2 95 10 99 126 111 94", []),  # key fails
        ("DNI 12345678Z", [("ES_NIF", "12345678Z", "es_dni")]),
        ("DNI 12345678-Z", [("ES_NIF", "12345678-Z", "es_dni")]),
        ("DNI 12345678A", []),  # wrong check letter
        ("NIE X1234567L", [("ES_NIE", "X1234567L", "es_nie")]),
        ("NIE X1234567A", []),
        ("CF RCCMNL83S18D969H", [("IT_FISCAL_CODE", "RCCMNL83S18D969H", "it_fiscal_code")]),
        ("CF RCCMNL83S18D969A", []),  # wrong check character
        ("BSN: 111222333", [("NL_BSN", "111222333", "nl_bsn")]),
        ("BSN: 1112.22.333", [("NL_BSN", "1112.22.333", "nl_bsn")]),
        ("BSN: 111222334", []),  # fails the eleven test
        ("invoice 111222333", []),  # nine digits without context
        ("Aadhaar 2341 2341 2346", [("IN_AADHAAR", "2341 2341 2346", "in_aadhaar")]),
        ("Aadhaar 2341 2341 2345", []),  # Verhoeff fails
        ("Aadhaar 1341 2341 2346", []),  # never starts with 0 or 1
        ("ticket 2341 2341 2346", []),  # twelve digits without context
    ],
)
def test_national_identifiers(found: Found, text: str, expected: list[tuple[str, str, str]]) -> None:
    # A number that is no identifier may still be a phone number somewhere ("95 10 99 126" is one in Spain).
    assert [item for item in found(text) if item[0] != "PHONE_NUMBER"] == expected


@pytest.mark.parametrize(
    ("value", "score"),
    [("219-45-6789", 0.6), ("219 45 6789", 0.5), ("219456789", 0.3), ("219-45.6789", None), ("666-45-6789", None)],
)
def test_ssn_score_depends_on_separators(value: str, score: float | None) -> None:
    assert ssn_score(value) == score


def test_nino_prefix_rules() -> None:
    assert nino_score("AB123456C") == 0.6
    assert [nino_score(prefix + "123456A") for prefix in ("DA", "FA", "IA", "QA", "UA", "VA", "GB", "ZZ")] == [None] * 8
