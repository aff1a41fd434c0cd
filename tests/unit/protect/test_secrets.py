from __future__ import annotations

import base64
import json
import random
import string
from typing import TYPE_CHECKING

import pytest

from bastion.protect.detect.recognizers.secrets import entropy, jwt_score, random_token

if TYPE_CHECKING:
    from conftest import Found

ALNUM = string.ascii_letters + string.digits


def noise(length: int, alphabet: str = ALNUM, seed: int = 1) -> str:
    """Random-looking characters, the same every run: fake keys that look like real ones."""
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(length))


def b64url(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


JWT = f"{b64url({'alg': 'HS256', 'typ': 'JWT'})}.{b64url({'sub': '1234567890'})}.{noise(43, ALNUM + '-_')}"
PEM_BODY = "\n".join(noise(64, ALNUM + "+/", seed) for seed in range(5))
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"
GCP_KEY = '"private_key": "-----BEGIN PRIVATE KEY-----\\n' + noise(64) + "\\n" + noise(64, seed=2)
GCP_KEY += '\\n-----END PRIVATE KEY-----\\n"'
AZURE_KEY = noise(86, ALNUM + "+/") + "=="


@pytest.mark.parametrize(
    ("text", "value", "recognizer"),
    [
        ("key AKIAIOSFODNN7EXAMPLE in the docs", "AKIAIOSFODNN7EXAMPLE", "aws_access_key"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_key",
        ),
        (
            '"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_key",
        ),
        (f"key=AIza{noise(35)}", f"AIza{noise(35)}", "gcp_api_key"),
        (GCP_KEY, GCP_KEY[GCP_KEY.index("-----BEGIN") : -1], "gcp_service_account"),
        (f"DefaultEndpointsProtocol=https;AccountName=x;AccountKey={AZURE_KEY};", AZURE_KEY, "azure_storage_key"),
        (f"Endpoint=sb://x/;SharedAccessKey={noise(43)}=", f"{noise(43)}=", "azure_shared_access_key"),
        (f"https://x.blob.core.windows.net/c?sv=2022&sig={noise(44)}%3D", f"{noise(44)}%3D", "azure_sas_signature"),
        (f"OPENAI_API_KEY sk-proj-{noise(48)}", f"sk-proj-{noise(48)}", "openai_api_key"),
        (f"sk-{noise(48)} is old", f"sk-{noise(48)}", "openai_api_key"),
        (f"x-api-key: sk-ant-api03-{noise(93)}AA", f"sk-ant-api03-{noise(93)}AA", "anthropic_api_key"),
        (f"token ghp_{noise(36)}", f"ghp_{noise(36)}", "github_token"),
        (f"github_pat_{noise(22)}_{noise(59, seed=2)}", f"github_pat_{noise(22)}_{noise(59, seed=2)}", "github_token"),
        (f"glpat-{noise(20)}", f"glpat-{noise(20)}", "gitlab_token"),
        (f"xoxb-123456789012-1234567890123-{noise(24)}", f"xoxb-123456789012-1234567890123-{noise(24)}", "slack_token"),
        (
            f"https://hooks.slack.com/services/T{noise(8).upper()}/B{noise(8).upper()}/{noise(24)}",
            f"https://hooks.slack.com/services/T{noise(8).upper()}/B{noise(8).upper()}/{noise(24)}",
            "slack_webhook",
        ),
        (f"stripe sk_live_{noise(24)}", f"sk_live_{noise(24)}", "stripe_key"),
        (f"npm_{noise(36)}", f"npm_{noise(36)}", "npm_token"),
        (f"hf_{noise(34)}", f"hf_{noise(34)}", "huggingface_token"),
        (f"Authorization: Bearer {JWT}", JWT, "jwt"),
        (f"here:\n{PEM}\nthanks", PEM, "pem_private_key"),
    ],
)
def test_secret_shapes(found: Found, text: str, value: str, recognizer: str) -> None:
    assert found(text) == [("SECRET", value, recognizer)]


@pytest.mark.parametrize(
    "text",
    [
        "ghp_" + "x" * 36,  # a placeholder: no entropy
        "sk-this-is-not-a-key",  # too short
        "pk_live_" + noise(24),  # a publishable Stripe key is public
        "id 123e4567-e89b-12d3-a456-426614174000",  # a UUID alone
        "commit 3f2a9c1b0d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a",  # a git SHA alone
        "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",  # the example, not a key
        "eyJhbGciOiJub25lIn0.eyJub3QiOiJqc29u.x",  # the payload is not JSON
        "AKIAIOSFODNN7EXAMPLE1",  # one character too many
    ],
)
def test_not_secrets(found: Found, text: str) -> None:
    assert [item for item in found(text) if item[0] == "SECRET"] == []


def test_secrets_win_overlaps_with_personal_data(found: Found) -> None:
    # The password runs into what looks like an email address; the credential is what must not leak.
    assert found("postgres://admin:s3cr3t@db.example.com:5432/app")[0] == ("SECRET", "s3cr3t", "url_password")


def test_jwt_needs_json_with_an_algorithm() -> None:
    assert jwt_score(JWT) == 0.95
    assert jwt_score(f"{b64url({'typ': 'JWT'})}.{b64url({'sub': 'x'})}.sig") is None
    assert jwt_score("eyJ!!!.eyJ!!!.sig") is None
    assert jwt_score(f"{b64url({'alg': 'none'})}.{base64.urlsafe_b64encode(b'[1]').decode()}.") is None


def test_entropy_and_random_tokens() -> None:
    assert entropy("") == 0
    assert entropy("aaaa") == 0
    assert entropy("abcd") == 2
    validate = random_token(10, 0.9, refuse=("sk-ant-",))
    assert validate(noise(12)) == 0.9
    assert validate(noise(8)) is None
    assert validate("sk-ant-" + noise(20)) is None
