"""Ways to reach a person: email addresses, phone numbers (checked by ``phonenumbers``) and IP addresses.

A dotted quad is an IP address wherever it appears: ``1.2.3.4`` after "version" is still reported, with a
lower score (0.5), because a gateway cannot tell a build number from a host; a policy can ask for more.
A quad glued to more digits (``1.2.3.4.5``) is not an address.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import phonenumbers

from bastion.protect.detect.recognizer import Recognizer, Span, runs_on

if TYPE_CHECKING:
    from collections.abc import Sequence

# The character before the "@" and the domain; ``local_part`` reaches back over the rest (Hyperscan tracks
# the start of an unbounded prefix slowly).
EMAIL = r"[A-Za-z0-9._%+\-]@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}\b"
_LOCAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")

# Digits with spaces, dots, dashes and brackets between them, and the same glued to an extension ("...0132x42",
# where no word boundary ends the digits); ``dialled`` adds a "+" or "(" before and a spaced extension after.
# Plain patterns scan faster than one with those alternatives.
PHONE = (r"\b\d[\d .\-()]{6,28}\d\b", r"\b\d[\d .\-()]{5,28}\dx\d{1,6}\b")
_EXTENSION_AFTER = re.compile(r" ?(?:x|ext\.?|#) ?\d{1,6}\b")
# Regions whose national formats are tried for numbers written without "+CC"; the first valid one wins.
PHONE_REGIONS = ("US", "CA", "GB", "DE", "FR", "ES", "IT", "NL", "CH", "IN", "AU", "BR", "IL")
_DIALS_00 = "DE"  # a region whose international prefix is 00, to read "0044 ..." and "001-..."


@dataclass(frozen=True, slots=True)
class _Plan:
    """How national numbers are written in a region: the trunk prefix and the possible national lengths."""

    region: str
    trunk: str
    trunk_required: bool  # "030 1234567" in Germany, never "30 1234567"; the "1" before a US number is optional
    lengths: frozenset[int]

    def fits(self, digits: str) -> bool:
        """Whether ``digits`` can be a national number here; a cheap test before ``phonenumbers`` parses."""
        if digits.startswith(self.trunk) and len(digits) - len(self.trunk) in self.lengths:
            return True
        return not self.trunk_required and len(digits) in self.lengths


def _plan(region: str) -> _Plan:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.general_desc is None:
        raise ValueError(f"phonenumbers has no numbering plan for region {region!r}")
    trunk = metadata.national_prefix or ""
    return _Plan(region, trunk, trunk == "0", frozenset(metadata.general_desc.possible_length))


_PLANS = tuple(_plan(region) for region in PHONE_REGIONS)

IPV4 = r"\b(?:\d{1,3}\.){3}\d{1,3}\b"
IPV6 = (
    r"\b[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\d{1,3}(?:\.\d{1,3}){3})?",
    r"::[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6}(?:\.\d{1,3}(?:\.\d{1,3}){2})?",
)

_EXTENSION = re.compile(r"\s*(?:x|ext\.?|#)\s*\d+$")
_DECIMAL = re.compile(r"\d+\.\d+")
_FORMATTED = re.compile(r"[+()\-. ]")
# Shapes that phonenumbers may accept in some region but that people write for other things.
_NOT_PHONES = re.compile(
    r"(?<!\d)(?:\d{4}([\-/.])\d{1,2}\1\d{1,2}"  # 2024-01-31
    r"|\d{1,2}([\-/.])\d{1,2}\2\d{4}"  # 31.01.2024
    r"|\d{3}-\d{2}-\d{4})(?!\d)"  # an SSN, valid or not
)
_MIN_DIGITS, _MAX_DIGITS = 7, 15


def local_part(text: str, start: int, end: int) -> Span:
    """Reach back from the "@" over the characters of an address's local part (never from a leading dot)."""
    while start > 0 and text[start - 1] in _LOCAL:
        start -= 1
    while text[start] == ".":
        start += 1
    return start, end


def dialled(text: str, start: int, end: int) -> Span:
    """Take in the "+" or "(" before a number and an extension after it: "+1 415-555-0132 ext. 42"."""
    if start > 0 and text[start - 1] in "+(":
        start -= 1
    after = _EXTENSION_AFTER.match(text, end)
    return start, end if after is None else after.end()


def email_score(value: str) -> float | None:
    """0.95 for an address whose local part and domain labels are well formed, else ``None``."""
    local, _, domain = value.rpartition("@")
    if not 0 < len(local) <= 64 or len(domain) > 253:
        return None
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return None
    labels = domain.split(".")
    if any(not 0 < len(label) <= 63 or label[0] == "-" or label[-1] == "-" for label in labels):
        return None
    return 0.95 if labels[-1].isalpha() else None


def phone_score(value: str) -> float | None:
    """0.5 for a formatted number ``phonenumbers`` calls valid, 0.3 for bare digits (they need context).

    Below the checksummed identifiers on purpose: a card or an SSN is a phone number in some region's plan.
    """
    digits = "".join(char for char in _EXTENSION.sub("", value) if char.isdigit())
    if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS or _NOT_PHONES.search(value):
        return None
    if any(_DECIMAL.fullmatch(token) for token in value.split()):
        return None  # "0.1234 0.5678" are measurements
    if value.startswith("+"):
        valid = _valid_in(value, None)
    elif digits.startswith("00"):
        valid = _valid_in(value, _DIALS_00)
    else:
        valid = any(_valid_in(value, plan.region) for plan in _PLANS if plan.fits(digits))
    if not valid:
        return None
    return 0.5 if _FORMATTED.search(value) else 0.3


def _valid_in(value: str, region: str | None) -> bool:
    """``phonenumbers``' verdict on ``value`` read in ``region`` (``None``: it carries its country code)."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return False
    if region is None or value.startswith("00"):
        return bool(phonenumbers.is_valid_number(number))
    return bool(phonenumbers.is_valid_number_for_region(number, region))


def ip_score(value: str) -> float | None:
    """0.85 for an address Python's ``ipaddress`` parses (v4 without leading zeros, or v6)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return None
    return 0.85


def ipv6_spans(candidate: str) -> Sequence[Span]:
    """The candidate, then shorter by one group at a time: a sentence may end in a colon."""
    ends = [len(candidate)] + [index for index in range(len(candidate) - 1, 1, -1) if candidate[index] == ":"]
    return [(0, end) for end in ends]


RECOGNIZERS = (
    Recognizer(
        name="email",
        entity="EMAIL_ADDRESS",
        patterns=(EMAIL,),
        validate=email_score,
        widen=local_part,
        context=("email", "e-mail", "mail", "contact", "address"),
        ceiling=0.95,
    ),
    Recognizer(
        name="phone",
        entity="PHONE_NUMBER",
        patterns=PHONE,
        validate=phone_score,
        widen=dialled,
        context=("phone", "tel", "telephone", "mobile", "cell", "call", "fax", "contact", "whatsapp", "sms"),
        negative=("order", "invoice", "tracking", "serial", "isbn", "version", "ref", "reference"),
        glue=runs_on(spaced=1),  # a number in a row of numbers is data, not a phone number
        ceiling=0.5,
    ),
    Recognizer(
        name="ipv4",
        entity="IP_ADDRESS",
        patterns=(IPV4,),
        validate=ip_score,
        context=("ip", "address", "host", "server", "client", "addr", "ipv4"),
        negative=("version", "ver", "release", "build", "firmware"),
        glue=runs_on(),
        ceiling=0.85,
    ),
    Recognizer(
        name="ipv6",
        entity="IP_ADDRESS",
        patterns=IPV6,
        validate=ip_score,
        spans=ipv6_spans,
        context=("ip", "address", "host", "server", "client", "addr", "ipv6"),
        glue=runs_on(),
        min_length=3,
        ceiling=0.85,
    ),
)
