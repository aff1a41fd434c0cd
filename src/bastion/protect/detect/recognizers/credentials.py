"""Credentials that a name points at: passwords in URLs and connection strings, ``Authorization`` header
values, and assignments such as ``password = ...`` or ``api_key: ...``.

An assigned value must look like a secret: two character classes, some entropy (2.5 bits a character and 6
characters for a password, which people choose; 3 bits and 8 characters for keys and tokens), and not code
(``os.environ[...]``, ``settings.DB_PASSWORD``) or a placeholder (``<your-key>``, ``****``). A git SHA or a
UUID assigned to ``token`` or ``api_key`` is reported; the same value alone is not.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING

from bastion.protect.detect.recognizer import Span, Validator, after
from bastion.protect.detect.recognizers.secrets import entropy, secret

if TYPE_CHECKING:
    from collections.abc import Sequence

_USERINFO = r"[A-Za-z0-9._~%!$&()*+,;=\-]"
# Printable ASCII but space, quotes, backtick, ',' and ';': where a written-out value ends. A password may hold
# '&', so "?password=...&user=bob" is covered past the password rather than cut inside it.
_VALUE = r"[\x21\x23-\x26\x28-\x2b\x2d-\x3a\x3c-\x5f\x61-\x7e]"
_PW_WORDS = r"(?:password|passwd|passphrase|pwd)"
_KEY_WORDS = r"(?:secret|token|api[_\-]?key|access[_\-]?key|secret[_\-]?key|private[_\-]?key|credentials?)"
_ASSIGN = rf"[\"']?\s*(?:=>|:=|=|:)\s*[\"']?{_VALUE}+"

URL_PASSWORD = rf"\b[A-Za-z][A-Za-z0-9+.\-]*://{_USERINFO}*:{_USERINFO}+@"
CONNECTION_PASSWORD = rf";\s*(?:password|pwd)\s*=\s*{_VALUE}+"
PASSWORD_ASSIGNMENT = _PW_WORDS + _ASSIGN
SECRET_ASSIGNMENT = _KEY_WORDS + _ASSIGN
BEARER = r"\bbearer\s+[A-Za-z0-9\-._~+/]+=*"
BASIC = r"\bbasic\s+[A-Za-z0-9+/]+=*"

_PLACEHOLDER_WORDS = frozenset({"password", "passwd", "pass", "pwd", "secret", "token", "none", "null", "redacted"})
_PLACEHOLDER_PARTS = ("xxx", "***", "...", "your", "<", "${", "{{", "%s", "placeholder", "changeme", "example")
_CODE = re.compile(r"[(){}\[\]$`]|^(?:os|self|this|process|env|config|settings|request|args)\.")
_IDENTIFIER = re.compile(r"[A-Za-z_]+(?:\.[A-Za-z_]+)*")
_CLASSES = (str.islower, str.isupper, str.isdigit)
_BEARER_FEWEST = 16


def placeholder(value: str) -> bool:
    """True for values that stand in for a secret rather than being one."""
    lowered = value.lower()
    return lowered in _PLACEHOLDER_WORDS or len(set(value)) == 1 or any(part in lowered for part in _PLACEHOLDER_PARTS)


def _classes(value: str) -> int:
    """How many of lower case, upper case, digits and other characters ``value`` uses."""
    chars = set(value)  # each distinct character tested once
    found = sum(any(test(char) for char in chars) for test in _CLASSES)
    return found + any(not char.isalnum() for char in chars)


def assignment_score(fewest: int, least_bits: float) -> Validator:
    """A validator for assigned values: 0.7 for one that looks like a secret, 0.8 at 4 bits a character."""

    def validate(value: str) -> float | None:
        if len(value) < fewest or placeholder(value) or _CODE.search(value) or _IDENTIFIER.fullmatch(value):
            return None
        bits = entropy(value)
        if _classes(value) < 2 or bits < least_bits:
            return None
        return 0.8 if bits >= 4.0 else 0.7

    return validate


def password_score(value: str) -> float | None:
    """0.9 for any password written in a URL or connection string, however weak, unless a placeholder."""
    return None if placeholder(value) else 0.9


def bearer_score(value: str) -> float | None:
    """0.85 for a bearer token of 16 characters or more that looks random."""
    if len(value) < _BEARER_FEWEST or placeholder(value) or entropy(value) < 3.0:
        return None
    return 0.85


def basic_score(value: str) -> float | None:
    """0.9 when the base64 decodes to printable ``user:password``."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    return 0.9 if colon and user and password and decoded.isprintable() else None


def url_password_spans(candidate: str) -> Sequence[Span]:
    """The password in ``scheme://user:password@``: after the first colon of the user part, up to the ``@``."""
    userinfo = candidate.index("://") + 3
    start = candidate.index(":", userinfo) + 1
    return ((start, len(candidate) - 1),)


_ASSIGNED = after(r"(?:=>|:=|=|:)\s*[\"']?", ".")

RECOGNIZERS = (
    secret("url_password", (URL_PASSWORD,), password_score, url_password_spans),
    secret("connection_string_password", (CONNECTION_PASSWORD,), password_score, after(r"=\s*"), caseless=True),
    secret("password_assignment", (PASSWORD_ASSIGNMENT,), assignment_score(6, 2.5), _ASSIGNED, caseless=True),
    secret("secret_assignment", (SECRET_ASSIGNMENT,), assignment_score(8, 3.0), _ASSIGNED, caseless=True),
    secret("bearer_token", (BEARER,), bearer_score, after(r"\s+"), caseless=True),
    secret("basic_auth", (BASIC,), basic_score, after(r"\s+"), caseless=True),
)
