from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import pytest

from bastion.protect.detect.recognizers.credentials import basic_score, placeholder

if TYPE_CHECKING:
    from conftest import Found

SHA = "3f2a9c1b0d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a"
UUID = "123e4567-e89b-12d3-a456-426614174000"


@pytest.mark.parametrize(
    ("text", "value", "recognizer"),
    [
        ("postgres://admin:hunter2@db:5432/app", "hunter2", "url_password"),
        ("redis://:Zq9x!pW@cache:6379", "Zq9x!pW", "url_password"),
        ("Server=tcp:x;Database=y;User Id=u;Password=hunter2;", "hunter2", "connection_string_password"),
        ("Host=x;Pwd=Tr0ub4dor&3;", "Tr0ub4dor&3", "connection_string_password"),
        ('password = "Tr0ub4dor&3x"', "Tr0ub4dor&3x", "password_assignment"),
        ("DB_PASSWORD=hunter22", "hunter22", "password_assignment"),
        ('{"passwd": "c0rrect-h0rse"}', "c0rrect-h0rse", "password_assignment"),
        (f"token = {SHA}", SHA, "secret_assignment"),  # a git SHA, assigned to a token
        (f"api_key: {UUID}", UUID, "secret_assignment"),  # a UUID, assigned to an API key
        ('client_secret: "9fK2mQ7xL4pR8sT1vW3y"', "9fK2mQ7xL4pR8sT1vW3y", "secret_assignment"),
        ("Authorization: Bearer 9fK2mQ7xL4pR8sT1vW3yZ5a", "9fK2mQ7xL4pR8sT1vW3yZ5a", "bearer_token"),
        (f"Authorization: Basic {base64.b64encode(b'alice:s3cret!').decode()}", "YWxpY2U6czNjcmV0IQ==", "basic_auth"),
    ],
)
def test_credentials(found: Found, text: str, value: str, recognizer: str) -> None:
    assert found(text) == [("SECRET", value, recognizer)]


@pytest.mark.parametrize(
    "text",
    [
        "postgres://user:password@localhost/db",  # the word "password" stands in for one
        "postgres://user:****@localhost/db",
        "https://example.com:8443/path",  # a port, no user
        "password = os.environ['DB_PASSWORD']",  # code
        "password = settings.DB_PASSWORD",  # a name
        "password = getpass()",
        "password: required",  # a word
        'api_key = "<your-api-key>"',
        "api_key = YOUR_API_KEY_HERE",
        "token: abc",  # too short
        "max_tokens = 1024",  # not a secret name
        "secret: aaaaaaaaaaaa",  # no entropy
        "Bearer authentication is described in RFC 6750",
        "Basic authentication",
    ],
)
def test_not_credentials(found: Found, text: str) -> None:
    assert [item for item in found(text) if item[0] == "SECRET"] == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<token>", True),
        ("${DB_PASS}", True),
        ("xxxx", True),
        ("********", True),
        ("Redacted", True),
        ("hunter2", False),
    ],
)
def test_placeholder(value: str, expected: bool) -> None:
    assert placeholder(value) is expected


def test_basic_auth_needs_user_and_password() -> None:
    assert basic_score(base64.b64encode(b"alice:pw").decode()) == 0.9
    assert basic_score(base64.b64encode(b"alice").decode()) is None
    assert basic_score(base64.b64encode(b"\xff\xfe:x").decode()) is None
    assert basic_score("not base64!") is None
