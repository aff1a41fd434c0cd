"""Two gateway processes sharing one PostgreSQL and one Redis behave as one gateway.

Limits hold across them (together they admit no more than the limit), a key revoked through
the CLI is refused by both on the very next request, and a provider added over one's admin API
serves requests on the other.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from typing import TYPE_CHECKING

import httpx
import pytest
import redis
import yaml
from tests.conftest import REDIS_URL, unavailable
from tests.processes import ROOT, Server, bastion_command, clean_env, free_port, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e
RPM = 7


def redis_or_skip() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)


class Replicas:
    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.project = f"shared-{secrets.token_hex(4)}"  # limits live in the shared Redis: a name of our own
        self.config = tmp_path / "bastion.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "providers": [{"name": "local", "kind": "echo", "models": ["echo-1"]}],
                    "projects": [{"name": self.project, "limits": {"rpm": RPM}}],
                    "members": [{"email": "ops@acme.com", "role": "owner", "projects": {self.project: "admin"}}],
                }
            )
        )
        self.env = clean_env(
            BASTION_HOME=str(tmp_path),
            BASTION_DATABASE_URL=database_url,
            BASTION_REDIS_URL=REDIS_URL,
            BASTION_SECRET_KEY="r" * 64,
            BASTION_LOG_LEVEL="WARNING",
        )
        self.urls: list[str] = []
        self.servers: list[Server] = []

    def start(self, count: int) -> None:
        for index in range(count):
            port = free_port()
            args = [*bastion_command(), "serve", "--config", str(self.config), "--port", str(port)]
            self.servers.append(Server.start(args, self.config.parent / f"gateway-{index}.log", self.env))
            self.urls.append(f"http://127.0.0.1:{port}")
        for server, url in zip(self.servers, self.urls, strict=True):
            wait_until(lambda s=server, u=url: s.answers(f"{u}/readyz"), 30, "both gateways to be ready")

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [*bastion_command(), *args, "--config", str(self.config)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.strip()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def replicas(tmp_path: Path, postgres_url: str) -> Iterator[Replicas]:
    redis_or_skip()
    running = Replicas(tmp_path, postgres_url)
    try:
        running.start(2)
        yield running
    finally:
        running.stop()


async def burst(urls: list[str], key: str, count: int) -> list[int]:
    body = {"model": "echo-1", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(timeout=15) as client:
        calls = [
            client.post(
                f"{urls[i % len(urls)]}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            for i in range(count)
        ]
        return [response.status_code for response in await asyncio.gather(*calls)]


def test_two_gateways_together_admit_no_more_than_the_limit(replicas: Replicas) -> None:
    key = replicas.cli("keys", "create", "--project", replicas.project)
    statuses = asyncio.run(burst(replicas.urls, key, 4 * RPM))
    assert statuses.count(200) == RPM  # a bucket refills RPM/60 a second: nothing more within this burst
    assert statuses.count(429) == 3 * RPM


def test_a_revocation_reaches_every_gateway_on_the_next_request(replicas: Replicas) -> None:
    key = replicas.cli("keys", "create", "--project", replicas.project, "--name", "leaving")
    headers = {"Authorization": f"Bearer {key}"}
    assert [httpx.get(f"{url}/v1/models", headers=headers).status_code for url in replicas.urls] == [200, 200]
    (row,) = [line for line in replicas.cli("keys", "list").splitlines() if " leaving " in line]
    replicas.cli("keys", "revoke", row.split()[0])
    # PostgreSQL notifies every gateway; the next request on each must already be refused.
    codes = [httpx.get(f"{url}/v1/models", headers=headers).json()["error"]["code"] for url in replicas.urls]
    assert codes == ["key_revoked", "key_revoked"]


def test_a_provider_added_on_one_gateway_serves_requests_on_the_other(replicas: Replicas) -> None:
    admin = {
        "Authorization": "Bearer " + replicas.cli("keys", "create", "-p", replicas.project, "--member", "ops@acme.com")
    }
    caller = {"Authorization": "Bearer " + replicas.cli("keys", "create", "-p", replicas.project)}
    body = {"model": "echo-9", "messages": [{"role": "user", "content": "hi"}]}
    first, second = replicas.urls
    before = httpx.post(f"{second}/v1/chat/completions", json=body, headers=caller)
    provider = {"name": "more", "kind": "echo", "models": ["echo-9"]}
    created = httpx.post(f"{first}/admin/v1/providers", json=provider, headers=admin)

    def served() -> bool:
        return httpx.post(f"{second}/v1/chat/completions", json=body, headers=caller).status_code == 200

    wait_until(served, 5, "the other gateway to route to the new provider")
    listed = httpx.get(f"{second}/admin/v1/providers", headers=admin).json()["data"]
    removed = httpx.delete(f"{second}/admin/v1/providers/more", headers=admin)

    def refused() -> httpx.Response | None:
        response = httpx.post(f"{first}/v1/chat/completions", json=body, headers=caller)
        return response if response.status_code == 404 else None

    after = wait_until(refused, 5, "the first gateway to drop the removed provider")
    assert (before.status_code, before.json()["error"]["code"]) == (404, "model_not_found")
    assert created.status_code == 201
    assert {(p["name"], p["source"], p["active"]) for p in listed} == {
        ("local", "config", True),
        ("more", "admin", True),
    }
    assert removed.status_code == 200
    assert (after.status_code, after.json()["error"]["code"]) == (404, "model_not_found")
