"""Values hidden with Unicode tricks are still found, and their spans cover exactly what the caller sent."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

if TYPE_CHECKING:
    from bastion.protect.detect import Detector
    from conftest import Found

ZW, ZWJ, WJ, BOM, SHY = "\u200b", "\u200d", "\u2060", "\ufeff", "\u00ad"
RLO, PDF, LRI, PDI = "\u202e", "\u202c", "\u2066", "\u2069"
NBSP, THIN = "\u00a0", "\u2009"
INVISIBLE = [ZW, ZWJ, WJ, BOM, SHY, RLO, PDF, LRI, PDI, "\U000e0041", "\U000e007f", "\ufe0f", "\u2061"]


def wide(text: str) -> str:
    """The full-width forms of ASCII characters (what an East Asian keyboard types)."""
    return "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in text)


def arabic(text: str) -> str:
    """Digits written as Arabic-Indic digits."""
    return "".join(chr(0x0660 + int(char)) if char.isdigit() else char for char in text)


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        (f"mail jo{ZW}hn@ex{ZWJ}ample.com now", f"jo{ZW}hn@ex{ZWJ}ample.com", "EMAIL_ADDRESS"),
        (f"card 4111{ZW}1111{WJ}1111{BOM}1111 ok", f"4111{ZW}1111{WJ}1111{BOM}1111", "CREDIT_CARD"),
        (f"card {wide('4111 1111 1111 1111')}", wide("4111 1111 1111 1111"), "CREDIT_CARD"),
        (f"card 4111{NBSP}1111{NBSP}1111{NBSP}1111", f"4111{NBSP}1111{NBSP}1111{NBSP}1111", "CREDIT_CARD"),
        (f"card {arabic('4111 1111 1111 1111')}", arabic("4111 1111 1111 1111"), "CREDIT_CARD"),
        ("card 4\u03361\u03361\u03361\u0336111111111111", "4\u03361\u03361\u03361\u0336111111111111", "CREDIT_CARD"),
        (f"card 4111{ZW}\u0489 1111 1111 1111", f"4111{ZW}\u0489 1111 1111 1111", "CREDIT_CARD"),  # a mark, hidden
        (f"SSN 219{RLO}-45-{PDF}6789", f"219{RLO}-45-{PDF}6789", "US_SSN"),
        ("SSN 219\u201045\u20116789", "219\u201045\u20116789", "US_SSN"),  # hyphen look-alikes
        ("SSN 219\u221245\u22126789", "219\u221245\u22126789", "US_SSN"),  # minus signs
        (f"SSN 219{THIN}45{THIN}6789", f"219{THIN}45{THIN}6789", "US_SSN"),
        (
            f"IBAN DE89\U000e0020 3704 0044 0532{SHY} 0130 00",
            f"DE89\U000e0020 3704 0044 0532{SHY} 0130 00",
            "IBAN_CODE",
        ),
        (f"key AKIA{LRI}IOSFODNN7{PDI}EXAMPLE", f"AKIA{LRI}IOSFODNN7{PDI}EXAMPLE", "SECRET"),
        (f"call {wide('+1 415')}-{wide('555-0132')}", f"{wide('+1 415')}-{wide('555-0132')}", "PHONE_NUMBER"),
        (f"write to {wide('john@example.com')}", wide("john@example.com"), "EMAIL_ADDRESS"),
    ],
)
def test_evasions(found: Found, text: str, value: str, entity: str) -> None:
    assert [(kind, span) for kind, span, _ in found(text)] == [(entity, value)]


VALUES = [
    ("john.doe@example.com", "EMAIL_ADDRESS"),
    ("4111 1111 1111 1111", "CREDIT_CARD"),
    ("219-45-6789", "US_SSN"),
    ("GB82 WEST 1234 5698 7654 32", "IBAN_CODE"),
    ("AKIAIOSFODNN7EXAMPLE", "SECRET"),
    ("192.168.10.20", "IP_ADDRESS"),
]


@given(st.sampled_from(VALUES), st.data())
def test_invisible_characters_inside_a_value_stay_inside_its_span(
    detector: Detector, sample: tuple[str, str], data: st.DataObject
) -> None:
    value, entity = sample
    hidden = value[0]
    for char in value[1:]:
        hidden += "".join(data.draw(st.lists(st.sampled_from(INVISIBLE), max_size=2))) + char
    before = data.draw(st.sampled_from(["", " ", "x: ", ZW, f"({ZW}"]))
    text = f"Note {before}{hidden}{data.draw(st.sampled_from(['', ' ', '.', ZW + ' ok']))}"
    (finding,) = detector.scan(text)
    assert finding.type == entity
    assert text[finding.start : finding.end] == hidden
