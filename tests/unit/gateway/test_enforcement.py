"""The request path's checks, end to end in-process: source address, permission, key age and rotation, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from tests.conftest import SECRET
from tests.harness import in_process, runtime_of

from bastion.identity.keys import KeyService, Owner

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from bastion.config import Settings

pytestmark = pytest.mark.anyio
CHAT = {"model": "echo-1", "messages": [{"role": "user", "content": "hello there"}]}
ORG: dict[str, Any] = {
    "server": {"trusted_proxies": ["127.0.0.0/8"]},
    "providers": [{"name": "local", "kind": "echo", "models": ["echo-1"]}],
    "projects": [
        {"name": "p"},
        {"name": "limited", "limits": {"rpm": 2}},
        {"name": "tokens", "limits": {"tpm": 1000}},
        {"name": "aged", "keys": {"max_age": "10d", "over_age": "refuse"}},
        {"name": "warned", "keys": {"max_age": "10d", "over_age": "warn"}},
    ],
    "members": [{"email": "rita@acme.com", "role": "reader", "projects": {"p": "reader"}}],
    "service_accounts": [
        {"name": "fenced", "project": "p", "ip_allowlist": ["10.0.1.0/24", "2001:db8::/32"]},
        {"name": "embedder", "project": "p", "permissions": ["embeddings"]},
    ],
}


def bearer(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def code_of(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "status"),
    [
        ("127.0.0.1", "10.0.1.7", 200),  # trusted proxy: the header names the client
        ("127.0.0.1", "2001:db8::7", 200),
        ("127.0.0.1", "10.0.10.7", 403),
        ("203.0.113.5", "10.0.1.7", 403),  # an untrusted peer cannot choose its address
        ("10.0.1.9", None, 200),
        ("127.0.0.1", None, 403),
    ],
)
async def test_service_account_ip_allowlist(
    make_settings: Callable[..., Settings], peer: str, forwarded: str | None, status: int
) -> None:
    settings = make_settings(**ORG)
    async with in_process(settings, client=(peer, 1234)) as (app, http):
        _, key = runtime_of(app).services.keys.create("p", owner=Owner("service_account", "fenced"))
        headers = bearer(key, **({"X-Forwarded-For": forwarded} if forwarded else {}))
        response = await http.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert response.status_code == status
    if status == 403:
        assert code_of(response) == "ip_not_allowed"
        assert "fenced" in response.json()["error"]["message"]


async def test_permissions_per_endpoint(make_settings: Callable[..., Settings]) -> None:
    async with in_process(make_settings(**ORG)) as (app, http):
        keys = runtime_of(app).services.keys
        _, embedder = keys.create("p", owner=Owner("service_account", "embedder"))
        _, reader = keys.create("p", owner=Owner("member", "rita@acme.com"))
        chat = await http.post("/v1/chat/completions", json=CHAT, headers=bearer(embedder))
        embed = await http.post("/v1/embeddings", json={"model": "echo-1", "input": "x"}, headers=bearer(embedder))
        models = await http.get("/v1/models", headers=bearer(embedder))
        reader_chat = await http.post("/v1/chat/completions", json=CHAT, headers=bearer(reader))
        reader_models = await http.get("/v1/models", headers=bearer(reader))
    assert (chat.status_code, code_of(chat)) == (403, "permission_denied")
    assert "'chat.completions'" in chat.json()["error"]["message"]
    assert embed.status_code == 200
    assert (models.status_code, code_of(models)) == (403, "permission_denied")
    assert (reader_chat.status_code, code_of(reader_chat)) == (403, "permission_denied")
    assert reader_models.status_code == 200


async def test_rate_limit_refuses_with_retry_after_and_openai_headers(make_settings: Callable[..., Settings]) -> None:
    async with in_process(make_settings(**ORG)) as (app, http):
        _, key = runtime_of(app).services.keys.create("limited")
        responses = [await http.post("/v1/chat/completions", json=CHAT, headers=bearer(key)) for _ in range(3)]
    first, second, third = responses
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    assert code_of(third) == "rate_limit_exceeded"
    assert int(third.headers["retry-after"]) >= 1
    assert "Project 'limited' is over its 2 requests per minute" in third.json()["error"]["message"]


async def test_tokens_are_estimated_then_reconciled(make_settings: Callable[..., Settings]) -> None:
    async with in_process(make_settings(**ORG)) as (app, http):
        runtime = runtime_of(app)
        _, key = runtime.services.keys.create("tokens")
        too_big = await http.post("/v1/chat/completions", json={**CHAT, "max_tokens": 5000}, headers=bearer(key))
        first = await http.post("/v1/chat/completions", json={**CHAT, "max_tokens": 600}, headers=bearer(key))
        await runtime.pipeline.drain()
        second = await http.post("/v1/chat/completions", json={**CHAT, "max_tokens": 600}, headers=bearer(key))
    assert too_big.status_code == 429 and "retry-after" not in too_big.headers
    assert "can never pass" in too_big.json()["error"]["message"]
    remaining_after_first = int(first.headers["x-ratelimit-remaining-tokens"])
    assert remaining_after_first < 400  # 600 reserved for the completion plus the prompt
    used = first.json()["usage"]["total_tokens"]
    # Had the estimate not been replaced by the real usage, the second request would not fit at all.
    assert second.status_code == 200
    assert int(second.headers["x-ratelimit-remaining-tokens"]) <= 1000 - used - 600


async def test_key_age_refuse_or_warn_and_rotation_overlap(make_settings: Callable[..., Settings]) -> None:
    async with in_process(make_settings(**ORG)) as (app, http):
        engine = runtime_of(app).services.engine
        past = KeyService(engine, SECRET.encode(), clock=lambda: datetime.now(UTC) - timedelta(days=11))
        _, aged = past.create("aged")
        _, warned = past.create("warned")
        old, _ = past.create("p", expires_in=timedelta(days=90))
        _, replacement = past.rotate(old.id, overlap=timedelta(hours=24))
        refused = await http.post("/v1/chat/completions", json=CHAT, headers=bearer(aged))
        warning = await http.post("/v1/chat/completions", json=CHAT, headers=bearer(warned))
        new = await http.post("/v1/chat/completions", json=CHAT, headers=bearer(replacement))
    assert (refused.status_code, code_of(refused)) == (401, "key_expired")
    assert "older than project 'aged' allows (10d)" in refused.json()["error"]["message"]
    assert warning.status_code == 200 and "bastion keys rotate" in warning.headers["x-bastion-warning"]
    assert new.status_code == 200


async def test_rotated_key_is_refused_once_the_overlap_ends(make_settings: Callable[..., Settings]) -> None:
    async with in_process(make_settings(**ORG)) as (app, http):
        engine = runtime_of(app).services.engine
        two_days_ago = KeyService(engine, SECRET.encode(), clock=lambda: datetime.now(UTC) - timedelta(days=2))
        old, plaintext = two_days_ago.create("p")
        two_days_ago.rotate(old.id, overlap=timedelta(hours=24))
        during = KeyService(engine, SECRET.encode())
        fresh, fresh_plain = during.create("p")
        during.rotate(fresh.id, overlap=timedelta(hours=24))
        ended = await http.post("/v1/chat/completions", json=CHAT, headers=bearer(plaintext))
        overlapping = await http.post("/v1/chat/completions", json=CHAT, headers=bearer(fresh_plain))
    assert (ended.status_code, code_of(ended)) == (401, "key_expired")
    assert "rotation overlap ended" in ended.json()["error"]["message"]
    assert overlapping.status_code == 200


async def test_revocation_and_offboarding_take_effect_on_the_next_request(
    make_settings: Callable[..., Settings],
) -> None:
    async with in_process(make_settings(**ORG)) as (app, http):
        services = runtime_of(app).services
        record, key = services.keys.create("p", owner=Owner("member", "rita@acme.com"))
        before = await http.get("/v1/models", headers=bearer(key))
        services.org.remove_member("cli:test", "rita@acme.com")
        after = await http.get("/v1/models", headers=bearer(key))
    assert before.status_code == 200
    assert (after.status_code, code_of(after)) == (401, "key_revoked")
    assert record.id not in after.text
