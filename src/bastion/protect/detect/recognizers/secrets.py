"""Credentials with a recognisable shape: cloud keys (AWS, GCP, Azure), provider tokens (OpenAI, Anthropic,
GitHub, GitLab, Slack, Stripe and more), JWTs and PEM private keys.

Every one is entity ``SECRET``; the recogniser's name says which kind. A token must also look random
(Shannon entropy of at least 3 bits a character), so ``ghp_xxxx...`` placeholders are not reported. A bare
UUID or git SHA has no recognisable shape and is not a secret; in an assignment it is (``credentials.py``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter

from bastion.protect.detect.recognizer import Recognizer, Splitter, Validator, after, trailing, whole

ENTITY = "SECRET"
_RANDOM_BITS = 3.0
_KEY_MATERIAL = 64
_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

# Provider tokens: name, patterns, fewest characters. The prefix makes them certain once they look random.
_TOKENS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("aws_access_key", (r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}\b",), 20),
    ("gcp_api_key", (r"\bAIza[0-9A-Za-z_\-]{35}",), 39),
    ("anthropic_api_key", (r"\bsk-ant-[A-Za-z0-9_\-]+",), 40),
    ("github_token", (r"\bgh[pousr]_[A-Za-z0-9]+", r"\bgithub_pat_[A-Za-z0-9_]+"), 40),
    ("gitlab_token", (r"\bgl(?:pat|ptt|dt|rt|cbt|ft|imt|oas|soat|agent)-[A-Za-z0-9_\-]+", r"\bGR1348941[\w\-]+"), 25),
    ("slack_token", (r"\bxox[abposre]-[A-Za-z0-9\-]+", r"\bxapp-\d-[A-Za-z0-9\-]+"), 15),
    ("slack_webhook", (r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/]+",), 40),
    ("stripe_key", (r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]+",), 32),
    ("stripe_webhook_secret", (r"\bwhsec_[A-Za-z0-9]+",), 30),
    ("npm_token", (r"\bnpm_[A-Za-z0-9]+",), 40),
    ("huggingface_token", (r"\bhf_[A-Za-z0-9]+",), 37),
    ("sendgrid_key", (r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}",), 69),
    ("google_oauth_secret", (r"\bGOCSPX-[A-Za-z0-9_\-]+",), 35),
    ("age_secret_key", (r"\bAGE-SECRET-KEY-1[0-9A-Z]+",), 74),
)

OPENAI = r"\bsk-[A-Za-z0-9_\-]+"
AWS_SIGNING_KEY = (
    r"(?:aws[A-Za-z0-9_.\-]*secret[A-Za-z0-9_.\-]*|secret_?access_?key)[\"']?\s*(?:=>|:=|=|:)\s*[\"']?"
    r"[A-Za-z0-9/+]{40,}"
)
_PEM_LABEL = r"-----BEGIN[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----"
PEM = (
    _PEM_LABEL + r"[A-Za-z0-9+/=\s\\:,\-]*-----END[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----",
    _PEM_LABEL + r"(?:[A-Za-z0-9+/=\r\n]|\\[rn])+",  # a key cut short, or pasted without its last line
)
GCP_SERVICE_ACCOUNT = (
    r"\"private_key\"\s*:\s*\"-----BEGIN PRIVATE KEY-----(?:[A-Za-z0-9+/=]|\\n)+-----END PRIVATE KEY-----(?:\\n)?"
)
JWT = r"\beyJ[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"
_PEM_ARMOUR = re.compile(r"-----(?:BEGIN|END)[A-Z0-9 ]*-----|\\[rn]")


def entropy(value: str) -> float:
    """Shannon entropy of ``value`` in bits a character (0 for the empty string)."""
    total = len(value)
    return -sum(count / total * math.log2(count / total) for count in Counter(value).values())


def random_token(fewest: int, score: float = 0.95, *, refuse: tuple[str, ...] = ()) -> Validator:
    """A validator for a token of at least ``fewest`` characters that looks random and starts with none of
    ``refuse`` (the OpenAI pattern leaves Anthropic's ``sk-ant-`` to its own recogniser)."""

    def validate(value: str) -> float | None:
        if len(value) < fewest or value.startswith(refuse) or entropy(value) < _RANDOM_BITS:
            return None
        return score

    return validate


def aws_secret_score(value: str) -> float | None:
    """0.95 for exactly 40 random-looking base64 characters after an AWS secret key name."""
    return 0.95 if len(value) == 40 and entropy(value) >= 3.5 else None


def _has_key_material(value: str) -> bool:
    """True when a PEM block carries at least 64 base64 characters: a header over ``...`` is an example."""
    body = _PEM_ARMOUR.sub("", value)
    return sum(char in _BASE64 for char in body) >= _KEY_MATERIAL


def pem_key_score(value: str) -> float | None:
    """0.95 for a private key block holding key material."""
    return 0.95 if _has_key_material(value) else None


def gcp_key_score(value: str) -> float | None:
    """0.99 for the private key of a service-account JSON file: above a bare PEM block, so its name wins."""
    return 0.99 if _has_key_material(value) else None


def jwt_score(value: str) -> float | None:
    """0.95 when the header and the payload decode to JSON objects and the header names an ``alg``."""
    header, payload, _ = value.split(".", 2)
    decoded_header, decoded_payload = _json_object(header), _json_object(payload)
    if decoded_header is None or decoded_payload is None or "alg" not in decoded_header:
        return None
    return 0.95


def _json_object(part: str) -> dict[str, object] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError):
        return None
    return data if isinstance(data, dict) else None


def secret(
    name: str, patterns: tuple[str, ...], validate: Validator, spans: Splitter = whole, *, caseless: bool = False
) -> Recognizer:
    """A ``SECRET`` recogniser: it wins overlaps with personal data (a credential sent is a credential leaked)."""
    return Recognizer(
        name=name, entity=ENTITY, patterns=patterns, validate=validate, spans=spans, caseless=caseless, priority=1
    )


RECOGNIZERS = (
    *(secret(name, patterns, random_token(fewest)) for name, patterns, fewest in _TOKENS),
    secret("openai_api_key", (OPENAI,), random_token(23, refuse=("sk-ant-",))),
    secret("aws_secret_key", (AWS_SIGNING_KEY,), aws_secret_score, trailing(_BASE64), caseless=True),
    secret("gcp_service_account", (GCP_SERVICE_ACCOUNT,), gcp_key_score, after(r"\"private_key\"\s*:\s*\"")),
    secret(
        "azure_storage_key",
        (r"AccountKey=[A-Za-z0-9+/]{86}==",),
        random_token(88),
        after(r"(?i)AccountKey="),
        caseless=True,
    ),
    secret(
        "azure_shared_access_key",
        (r"SharedAccessKey=[A-Za-z0-9+/]{43}=",),
        random_token(44),
        after(r"(?i)SharedAccessKey="),
        caseless=True,
    ),
    secret("azure_sas_signature", (r"[?&]sig=[A-Za-z0-9%+/]{40,}",), random_token(40, 0.9), after(r"sig=")),
    secret("jwt", (JWT,), jwt_score),
    secret("pem_private_key", PEM, pem_key_score),
)
