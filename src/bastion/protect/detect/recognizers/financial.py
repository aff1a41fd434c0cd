"""Money: payment card numbers (Luhn and issuer ranges), IBANs (mod 97, per-country length and format) and
US bank routing numbers (ABA checksum; nine digits pass it one time in ten, so they need context)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from stdnum import iban, luhn
from stdnum.us import rtn

from bastion.protect.detect.recognizer import Recognizer, Span, grouped, runs_on

if TYPE_CHECKING:
    from collections.abc import Sequence

# 12 to 19 digits in one piece, or in groups as cards are printed (4-4-4-4 and a short last group, 4-6-5 for
# American Express, 4-6-4 for Diners Club), split by a space, dot, dash or line break.
_SEP = r"(?:[ .\-]|\r?\n)"
CARD = (
    r"\b\d{12,19}\b",
    rf"\b\d{{4}}(?:{_SEP}\d{{4}}){{2,3}}(?:{_SEP}\d{{1,4}})?\b",
    rf"\b\d{{4}}{_SEP}\d{{6}}{_SEP}\d{{4,5}}\b",
)
# Upper case, in groups or not; or lower case in one piece (a lower-case pattern with spaces runs into prose).
IBAN = (r"\b[A-Z]{2}\d{2}[A-Z0-9 \-]{10,38}[A-Z0-9]\b", r"\b[a-z]{2}\d{2}[a-z0-9]{11,30}\b")
ROUTING = r"\b\d{4}[ \-]?\d{4}[ \-]?\d\b"

_DIGITS = re.compile(r"\d+")
_SEPARATORS = re.compile(r"[^A-Za-z0-9]")
_LETTER_NUMBERS = str.maketrans({chr(code): str(code - 55) for code in range(ord("A"), ord("Z") + 1)})  # A=10
_FEWEST, _MOST = 12, 19

# Issuer identification ranges: (lowest prefix, highest prefix, lengths). Maestro and UnionPay are wide on purpose.
_ISSUERS: tuple[tuple[str, str, frozenset[int]], ...] = (
    ("4", "4", frozenset({13, 16, 19})),  # Visa
    ("51", "55", frozenset({16})),  # Mastercard
    ("2221", "2720", frozenset({16})),  # Mastercard 2-series
    ("34", "34", frozenset({15})),  # American Express
    ("37", "37", frozenset({15})),
    ("6011", "6011", frozenset(range(16, 20))),  # Discover
    ("644", "659", frozenset(range(16, 20))),
    ("300", "305", frozenset(range(14, 20))),  # Diners Club
    ("3095", "3095", frozenset(range(14, 20))),
    ("36", "36", frozenset(range(14, 20))),
    ("38", "39", frozenset(range(14, 20))),
    ("3528", "3589", frozenset(range(16, 20))),  # JCB
    ("1800", "1800", frozenset({15})),  # JCB, older ranges
    ("2131", "2131", frozenset({15})),
    ("2200", "2204", frozenset(range(16, 20))),  # Mir
    ("62", "62", frozenset(range(16, 20))),  # UnionPay
    ("50", "50", frozenset(range(12, 20))),  # Maestro
    ("56", "69", frozenset(range(12, 20))),
    ("60", "60", frozenset({16})),  # RuPay
    ("81", "82", frozenset({16})),
)


def _issued(digits: str) -> bool:
    """True when some issuer uses this prefix at this length."""
    return (
        any(low <= digits[: len(low)] <= high and len(digits) in lengths for low, high, lengths in _ISSUERS)
        and len(set(digits)) > 1
    )


def card_spans(candidate: str) -> Sequence[Span]:
    """Runs of digit groups holding 12 to 19 digits, longest first, written as cards are: in one piece, or in
    groups of four or six but for the last ("4111 1111 1111 1111", "3400 000000 00009"). A card before a
    year or after a house number is still found; ten digits in a row of single digits are not a card."""
    groups = [match.span() for match in _DIGITS.finditer(candidate)]
    found: list[Span] = []
    for first, (start, _) in enumerate(groups):
        count = 0
        for group_start, group_end in groups[first:]:
            count += group_end - group_start
            if count > _MOST:
                break
            if count >= _FEWEST:
                found.append((start, group_end))
            if group_end - group_start not in (4, 6):
                break  # only the last group may be irregular
    return sorted(found, key=lambda span: span[0] - span[1])


def card_score(value: str) -> float | None:
    """0.9 for 12-19 digits with a valid Luhn check digit and an issuer prefix that fits the length."""
    digits = "".join(char for char in value if char.isdigit())
    if not 12 <= len(digits) <= 19 or not _issued(digits):
        return None
    return 0.9 if luhn.is_valid(digits) else None


def iban_score(value: str) -> float | None:
    """0.95 for an IBAN that ``python-stdnum`` accepts: known country, its length and format, mod 97 (checked
    here first, cheaply: it turns away 96 look-alikes in 97)."""
    compact = _SEPARATORS.sub("", value).upper()
    if int((compact[4:] + compact[:4]).translate(_LETTER_NUMBERS)) % 97 != 1:
        return None
    return 0.95 if iban.is_valid(value) else None


def routing_score(value: str) -> float | None:
    """0.3 for nine digits with a valid ABA checksum: enough only with words like "routing" nearby."""
    digits = "".join(char for char in value if char.isdigit())
    return 0.3 if len(set(digits)) > 1 and rtn.is_valid(digits) else None


RECOGNIZERS = (
    Recognizer(
        name="credit_card",
        entity="CREDIT_CARD",
        patterns=CARD,
        validate=card_score,
        spans=card_spans,
        min_length=12,
        context=("card", "credit", "debit", "visa", "mastercard", "amex", "cc", "payment", "pan", "cardholder"),
        negative=("order", "tracking", "invoice", "isbn"),
        glue=runs_on(spaced=4),  # in a row of four-digit groups, sixteen digits are data
        ceiling=0.9,
    ),
    Recognizer(
        name="iban",
        entity="IBAN_CODE",
        patterns=IBAN,
        validate=iban_score,
        spans=grouped(15, 34, from_start=True),
        context=("iban", "bank", "account", "transfer", "sepa", "wire"),
        ceiling=0.95,
    ),
    Recognizer(
        name="aba_routing",
        entity="US_BANK_ROUTING",
        patterns=(ROUTING,),
        validate=routing_score,
        context=("routing", "aba", "rtn", "transit", "bank"),
        glue=runs_on(),
        ceiling=0.3,
    ),
)
