"""API keys from the ``bastion keys`` CLI: only a valid key gets through, revocation and expiry hold at once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import openai
import pytest

from tests.e2e.conftest import PROJECT, SDK, UPSTREAM_KEY, wait_until

if TYPE_CHECKING:
    import httpx

    from tests.e2e.conftest import Gateway, Upstream

pytestmark = pytest.mark.e2e

MESSAGES = [{"role": "user", "content": "who am I?"}]
CHAT = {"model": "gpt-test", "messages": MESSAGES}


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer bst_not-a-key-bastion-issued"},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="},
        {"api-key": "bst_not-a-key-bastion-issued"},
    ],
    ids=["no-key", "wrong-key", "empty-bearer", "basic-auth", "wrong-azure-api-key"],
)
@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/chat/completions"), ("GET", "/v1/models")])
def test_request_without_a_valid_key_is_refused(
    http: httpx.Client, upstream: Upstream, headers: dict[str, str], method: str, path: str
) -> None:
    response = http.request(method, path, headers=headers, json=CHAT if method == "POST" else None)
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("authentication_error", "invalid_api_key")
    assert error["message"]
    assert upstream.received() == []


def test_key_in_the_azure_api_key_header_is_accepted(http: httpx.Client, api_key: str, upstream: Upstream) -> None:
    response = http.post("/v1/chat/completions", headers={"api-key": api_key}, json=CHAT)
    assert response.status_code == 200
    headers = upstream.last()["headers"]
    assert headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert "api-key" not in headers


def test_sdk_with_a_wrong_key_gets_an_authentication_error(gateway: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError) as refused:
        SDK("sync", f"{gateway.url}/v1", "bst_wrong").chat(**CHAT)
    assert refused.value.status_code == 401
    assert refused.value.code == "invalid_api_key"


def test_revoked_key_is_refused_on_the_very_next_request(gateway: Gateway, api_key: str, upstream: Upstream) -> None:
    client = SDK("sync", f"{gateway.url}/v1", gateway.create_key(PROJECT, "--name", "to-revoke"))
    assert client.chat(**CHAT).choices  # the gateway now holds the key in its cache
    key_id = gateway.key_named("to-revoke")["id"]
    assert key_id in gateway.cli("keys", "revoke", key_id).stdout
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat(**CHAT)
    assert refused.value.status_code == 401
    assert refused.value.code == "key_revoked"
    assert len(upstream.received()) == 1
    # Only that key: the session's key of the same project still works.
    assert SDK("sync", f"{gateway.url}/v1", api_key).chat(**CHAT).choices


def test_expires_in_sets_the_expiry_and_an_expired_key_is_refused(
    gateway: Gateway, http: httpx.Client, api_key: str
) -> None:
    gateway.create_key(PROJECT, "--name", "two-hours", "--expires-in", "2h")
    short = gateway.create_key(PROJECT, "--name", "one-second", "--expires-in", "1s")

    def refused() -> httpx.Response | None:
        response = http.get("/v1/models", headers={"Authorization": f"Bearer {short}"})
        return response if response.status_code == 401 else None

    response = wait_until(refused, 5.0, "the one-second key to expire")
    assert response.json()["error"]["code"] == "key_expired"
    rows = {row["name"]: row for row in gateway.list_keys()}
    two_hours, one_second, session = rows["two-hours"], rows["one-second"], rows["session"]
    assert parse_time(two_hours["expires_at"]) - parse_time(two_hours["created_at"]) == timedelta(hours=2)
    assert two_hours["status"] == "active"
    assert parse_time(one_second["expires_at"]) - parse_time(one_second["created_at"]) == timedelta(seconds=1)
    assert one_second["status"] == "expired"
    assert session["expires_at"] is None  # the session's key, created without --expires-in
