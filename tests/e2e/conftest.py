"""Real processes on loopback: the fake upstream and ``bastion serve``, driven by the official ``openai`` SDK.

Both servers start once per session; keys come from the ``bastion keys`` CLI in processes of their own.
Each test gets the upstream with its record of received requests emptied, so it sees only its own traffic.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest
import yaml

from tests.fakes import control
from tests.processes import ROOT, Server, bastion_command, clean_env, free_port, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tests.fakes.control import FakeUpstream as Upstream

UPSTREAM_KEY = "sk-upstream-e2e-4f1c9a7b2d"
UPSTREAM_KEY_ENV = "BASTION_E2E_UPSTREAM_KEY"
PROJECT = "e2e"
LIMITED_PROJECT = "limited"
VAULTED_PROJECT = "vaulted"  # placeholders persisted between requests
REDACTING_PROJECT = "redacting"  # e-mail addresses redacted, not tokenised
REGULATED_PROJECT = "regulated"  # every request at least regulated
MAX_BODY = 16384
FIRST_BYTE = 1.0
START_TIMEOUT = 30.0


@dataclass
class Gateway:
    url: str
    config: Path
    env: dict[str, str]
    providers: list[str]
    models: dict[str, str]  # each model we serve -> the provider serving it
    server: Server

    @property
    def database(self) -> Path:
        """The SQLite file the gateway keeps its store in (``-wal`` and ``-shm`` beside it)."""
        return self.config.parent / "bastion.db"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``bastion <args> --config <our config>`` in a process of its own."""
        done = subprocess.run(
            [*bastion_command(), *args, "--config", str(self.config)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and done.returncode != 0:
            pytest.fail(f"bastion {' '.join(args)} exited with {done.returncode}:\n{done.stderr}")
        return done

    def create_key(self, project: str = PROJECT, *options: str) -> str:
        """A new key, as ``bastion keys create`` prints it (once, alone on stdout)."""
        key = self.cli("keys", "create", "--project", project, *options).stdout.strip()
        assert key.startswith("bst_"), key
        return key

    def list_keys(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self.cli("keys", "list", "--json").stdout)
        return rows

    def key_named(self, name: str) -> dict[str, Any]:
        (row,) = [row for row in self.list_keys() if row["name"] == name]
        return row


# The providers here serve failing models on purpose, test after test: one attempt a request, and circuits that
# never open, so that each test sees exactly its own failure (tests/e2e/test_routing.py covers retries and
# breakers with a gateway of its own).
NEVER_OPEN = {"failures": 1_000_000, "min_requests": 1_000_000}


def gateway_config(upstream: str, closed_port: int) -> dict[str, Any]:
    """Providers for every behaviour of the fake upstream, under our own model names (ours -> theirs)."""
    return {
        "organization": "e2e",
        "server": {"max_body_bytes": MAX_BODY},
        "routing": {"attempts": 1},
        "providers": [
            {
                "name": "fake",
                "kind": "openai",
                "base_url": f"{upstream}/v1",
                "api_key_env": UPSTREAM_KEY_ENV,
                "models": {
                    "gpt-test": "fake-ok",
                    "gpt-chars": "fake-chars",
                    "text-embedding-test": "fake-ok",
                    "gpt-400": "fake-400",
                    "gpt-429": "fake-429",
                    "gpt-500": "fake-500",
                    "gpt-reset": "fake-reset",
                    "gpt-cut": "fake-cut",
                    "gpt-truncate": "fake-truncate",
                    "gpt-stall": "fake-stall",
                },
                "breaker": NEVER_OPEN,
            },
            {
                "name": "fake-slow",
                "kind": "openai",
                "base_url": f"{upstream}/v1",
                "api_key_env": UPSTREAM_KEY_ENV,
                "models": {"gpt-slow": "fake-slow"},
                "timeouts": {"first_byte": FIRST_BYTE},
                "breaker": NEVER_OPEN,
            },
            {
                "name": "down",
                "kind": "openai",
                "base_url": f"http://127.0.0.1:{closed_port}/v1",
                "models": {"gpt-down": "fake-ok"},
                "breaker": NEVER_OPEN,
            },
            {"name": "local", "kind": "echo", "models": ["echo-1"]},
        ],
        "projects": [
            {"name": PROJECT, "environment": "development"},
            {"name": LIMITED_PROJECT, "environment": "sandbox", "models": ["echo-1"]},
            {"name": VAULTED_PROJECT, "data_policy": {"vault": {"persist": True}}},
            {"name": REDACTING_PROJECT, "data_policy": {"entities": {"EMAIL_ADDRESS": "redact"}}},
            {"name": REGULATED_PROJECT, "data_policy": {"default_class": "regulated"}},
        ],
    }


@pytest.fixture(scope="session")
def upstream_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    with control.running(tmp_path_factory.mktemp("upstream")) as upstream:
        yield upstream


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream_server: Upstream) -> Iterator[Gateway]:
    home = tmp_path_factory.mktemp("bastion")
    file = gateway_config(upstream_server.url, closed_port=free_port())
    config = home / "bastion.yaml"
    config.write_text(yaml.safe_dump(file, sort_keys=False))
    env = clean_env(
        BASTION_HOME=str(home),
        BASTION_DATABASE_URL=f"sqlite:///{home / 'bastion.db'}",
        **{UPSTREAM_KEY_ENV: UPSTREAM_KEY},
    )
    port = free_port()
    args = [*bastion_command(), "serve", "--config", str(config), "--port", str(port)]
    server = Server.start(args, home / "gateway.log", env)
    providers = [provider["name"] for provider in file["providers"]]
    models = {model: provider["name"] for provider in file["providers"] for model in provider["models"]}
    running = Gateway(f"http://127.0.0.1:{port}", config, env, providers, models, server)
    try:
        wait_until(lambda: server.answers(f"{running.url}/readyz"), START_TIMEOUT, "bastion serve to be ready")
        yield running
    finally:
        server.stop()


@pytest.fixture(scope="session")
def api_key(gateway: Gateway) -> str:
    return gateway.create_key(PROJECT, "--name", "session")


@pytest.fixture
def upstream(upstream_server: Upstream) -> Upstream:
    """The fake upstream, with nothing received yet."""
    upstream_server.clear()
    return upstream_server


@pytest.fixture
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    """A plain HTTP client on the gateway, for what the SDK would hide (raw bodies, bad input)."""
    with httpx.Client(base_url=gateway.url, timeout=15.0) as client:
        yield client


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


@dataclass
class SDK:
    """The official ``openai`` SDK, sync or async, behind one synchronous face.

    ``sent`` collects the JSON body of every request the SDK sent, exactly as it went on the wire.
    Each call opens and closes its own client (the async one inside its own event loop).
    """

    mode: str
    base_url: str
    api_key: str
    sent: list[dict[str, Any]] = field(default_factory=list)

    def _record(self, request: httpx.Request) -> None:
        if request.content:
            self.sent.append(json.loads(request.content))

    async def _record_async(self, request: httpx.Request) -> None:
        self._record(request)

    def run(self, call: Callable[[Any], Any]) -> Any:
        """``call(client)``: a plain result with the sync client, a coroutine with the async one."""
        options: dict[str, Any] = {"base_url": self.base_url, "api_key": self.api_key, "max_retries": 0}
        if self.mode == "sync":
            hooks = {"request": [self._record]}
            with openai.OpenAI(**options, http_client=httpx.Client(event_hooks=hooks, timeout=15.0)) as client:
                return call(client)

        async def run_async() -> Any:
            hooks = {"request": [self._record_async]}
            http_client = httpx.AsyncClient(event_hooks=hooks, timeout=15.0)
            async with openai.AsyncOpenAI(**options, http_client=http_client) as client:
                return await call(client)

        return asyncio.run(run_async())

    def chat(self, **params: Any) -> Any:
        return self.run(lambda client: client.chat.completions.create(**params))

    def raw_chat(self, **params: Any) -> Any:
        """``(headers, JSON body as sent, parsed completion)`` of one chat completion."""

        def sync(client: openai.OpenAI) -> Any:
            raw = client.chat.completions.with_raw_response.create(**params)
            return raw.headers, raw.http_response.json(), raw.parse()

        async def in_loop(client: openai.AsyncOpenAI) -> Any:
            raw = await client.chat.completions.with_raw_response.create(**params)
            return raw.headers, raw.http_response.json(), raw.parse()

        return self.run(sync if self.mode == "sync" else in_loop)

    def stream(self, into: list[Any] | None = None, **params: Any) -> list[Any]:
        """Every chunk of a streamed completion; ``into`` keeps those that arrived if iteration raises."""
        chunks: list[Any] = [] if into is None else into

        def sync(client: openai.OpenAI) -> None:
            with client.chat.completions.create(stream=True, **params) as stream:
                for chunk in stream:
                    chunks.append(chunk)

        async def in_loop(client: openai.AsyncOpenAI) -> None:
            stream = await client.chat.completions.create(stream=True, **params)
            async with stream:
                async for chunk in stream:
                    chunks.append(chunk)

        self.run(sync if self.mode == "sync" else in_loop)
        return chunks

    def embed(self, **params: Any) -> Any:
        return self.run(lambda client: client.embeddings.create(**params))

    def models(self) -> list[str]:
        def sync(client: openai.OpenAI) -> list[str]:
            return [model.id for model in client.models.list()]

        async def in_loop(client: openai.AsyncOpenAI) -> list[str]:
            return [model.id async for model in client.models.list()]

        return self.run(sync if self.mode == "sync" else in_loop)


@pytest.fixture(params=["sync", "async"])
def sdk(request: pytest.FixtureRequest, gateway: Gateway, api_key: str) -> SDK:
    """The SDK on the gateway with the session's key, once with ``OpenAI`` and once with ``AsyncOpenAI``."""
    return SDK(request.param, f"{gateway.url}/v1", api_key)
