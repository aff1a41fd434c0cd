"""Routing end to end: residency, vendor attestations, circuit breakers, retries and failover.

Four named fake upstreams run in their own processes behind a gateway of this module's own, driven with the
official ``openai`` SDK. Each test has providers of its own (so its circuit breakers start closed), named
``<scenario>-<fake>`` and serving the model ``gpt-<scenario>``; the fakes are shared and reset before each
test. Which fake answered shows in the answer's ``system_fingerprint`` and in what each fake received.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest
import yaml

from tests.e2e.conftest import SDK, Gateway
from tests.fakes import upstream as fake
from tests.fakes.control import running
from tests.processes import Server, bastion_command, clean_env, free_port, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.fakes.control import FakeUpstream

pytestmark = pytest.mark.e2e

OPENAI_KEY_ENV, OPENAI_KEY = "BASTION_E2E_ROUTING_OPENAI_KEY", "sk-routing-openai-5d2e8c"
AZURE_KEY_ENV, AZURE_KEY = "BASTION_E2E_ROUTING_AZURE_KEY", "azure-routing-key-9b1f47"
API_VERSION = "2024-10-21"
TODAY = datetime.now(UTC).date()
COOLDOWN = 2  # seconds a circuit stays open
TIMEOUT = 1.0  # seconds to an upstream's first byte, and between two of its reads
BUDGET = 8.0
EU, ANYWHERE = "eu-data", "anywhere"  # a project whose data stays in the EU, and one that allows any residency
EMAIL = "jana.novak@example.eu"
PROMPT = f"Draft a reply to {EMAIL} about her delayed order."
SENT = PROMPT.replace(EMAIL, "[EMAIL_ADDRESS_1]")  # what every upstream gets instead
CHAT = "/chat/completions"
OPS = "ops@routing.example"  # an organisation admin: changes providers and vendors over the admin API

# Each fake as a provider: its kind, the vendor behind it, where it keeps data, and its priority (lower first).
FAKES: dict[str, dict[str, Any]] = {
    "eu-a": {"kind": "openai", "vendor": "acme", "region": "eu-west-1", "residency": "eu", "priority": 10},
    "eu-b": {"kind": "azure", "vendor": "contoso", "region": "westeurope", "residency": "eu", "priority": 20},
    "eu-c": {
        "kind": "openai_compatible",
        "vendor": "lapsed",
        "region": "eu-central-1",
        "residency": "eu",
        "priority": 0,
    },
    "us": {"kind": "openai", "vendor": "acme", "region": "us-east-1", "residency": "us", "priority": 30},
}
# Which fakes serve each scenario's model.
SCENARIOS: dict[str, tuple[str, ...]] = {
    "failover": ("eu-a", "eu-b", "us"),
    "retry": ("eu-a", "eu-b", "us"),
    "residency": ("eu-a", "eu-b", "us"),
    "breaker": ("eu-a", "eu-b"),
    "rate": ("eu-a", "eu-b"),
    "stream-stall": ("eu-a", "eu-b", "us"),
    "stream-down": ("eu-a", "eu-b", "us"),
    "stream-headers": ("eu-a", "eu-b", "us"),
    "stream-midway": ("eu-a", "eu-b", "us"),
    "stream-slow": ("eu-a", "eu-b"),
    "busy": ("eu-a", "eu-b"),
    "retry-after": ("eu-a",),
    "azure": ("eu-b",),
    "lapsed": ("eu-c", "eu-a"),
    "lapsed-only": ("eu-c",),
}
BREAKER = {"failures": 2, "cooldown": f"{COOLDOWN}s"}
# Only the error rate can open this one: never 100 failures in a row.
RATE_BREAKER = {"failures": 100, "error_rate": 0.5, "min_requests": 4, "window": "30s", "cooldown": "30s"}
VENDORS = [
    {"name": "acme", "attestations": [{"type": "dpa", "expires": str(TODAY + timedelta(days=400))}]},
    {"name": "contoso", "attestations": [{"type": "dpa", "expires": str(TODAY + timedelta(days=20))}]},
    {"name": "lapsed", "attestations": [{"type": "dpa", "expires": str(TODAY - timedelta(days=3))}]},
]


def provider(scenario: str, name: str, url: str) -> dict[str, Any]:
    azure = FAKES[name]["kind"] == "azure"
    return {
        "name": f"{scenario}-{name}",
        **FAKES[name],
        "base_url": url if azure else f"{url}/v1",
        "api_key_env": AZURE_KEY_ENV if azure else OPENAI_KEY_ENV,
        **({"api_version": API_VERSION} if azure else {}),
        "models": {f"gpt-{scenario}": "fake-ok"},  # on Azure: the deployment
        "timeouts": {"connect": TIMEOUT, "first_byte": TIMEOUT, "idle": TIMEOUT, "total": 10},
        "breaker": RATE_BREAKER if scenario == "rate" else BREAKER,
    }


def gateway_config(urls: dict[str, str]) -> dict[str, Any]:
    require = {"require": {"confidential": ["dpa"]}}  # an e-mail address makes a request confidential
    return {
        "organization": "routing",
        "routing": {"attempts": 3, "budget": BUDGET, "backoff": 0.05, "backoff_max": 0.2},
        "vendors": VENDORS,
        "providers": [provider(scenario, name, urls[name]) for scenario, names in SCENARIOS.items() for name in names],
        "projects": [
            {"name": EU, "residency": ["eu"], "data_policy": require},
            {"name": ANYWHERE, "data_policy": require},
        ],
        "members": [{"email": OPS, "role": "admin", "projects": {EU: "admin"}}],
    }


@dataclass
class Routing:
    gateway: Gateway
    fakes: dict[str, FakeUpstream]
    keys: dict[str, str]

    def sdk(self, project: str = EU) -> SDK:
        return SDK("sync", f"{self.gateway.url}/v1", self.keys[project])

    def readyz(self) -> dict[str, Any]:
        response = httpx.get(f"{self.gateway.url}/readyz")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def circuit(self, provider: str) -> str:
        state: str = self.readyz()["checks"]["circuits"].get(provider, "closed")
        return state

    def audit(self, request_id: str) -> list[dict[str, Any]]:
        """The request's audit entries, oldest first, from ``bastion audit export``."""
        export = self.gateway.cli("audit", "export", "--format", "jsonl").stdout
        entries = [json.loads(line) for line in export.splitlines() if line]
        return [entry for entry in entries if entry.get("request_id") == request_id]

    def chats(self, name: str) -> list[dict[str, Any]]:
        """The chat completion bodies fake ``name`` received since the test began."""
        return [record["body"] for record in self.fakes[name].received() if record["path"].endswith(CHAT)]

    def counts(self) -> dict[str, int]:
        """Chat completion requests each fake received since the test began."""
        return {name: len(self.chats(name)) for name in self.fakes}


@contextmanager
def serving(home: Path, urls: dict[str, str]) -> Iterator[Gateway]:
    """``bastion serve`` on this module's config, stopped when the block ends."""
    file = gateway_config(urls)
    config = home / "bastion.yaml"
    config.write_text(yaml.safe_dump(file, sort_keys=False))
    env = clean_env(
        BASTION_HOME=str(home),
        BASTION_DATABASE_URL=f"sqlite:///{home / 'bastion.db'}",
        **{OPENAI_KEY_ENV: OPENAI_KEY, AZURE_KEY_ENV: AZURE_KEY},
    )
    providers = [item["name"] for item in file["providers"]]
    models = {model: item["name"] for item in reversed(file["providers"]) for model in item["models"]}
    port = free_port()
    server = Server.start(
        [*bastion_command(), "serve", "--config", str(config), "--port", str(port)], home / "gateway.log", env
    )
    gateway = Gateway(f"http://127.0.0.1:{port}", config, env, providers, models, server)
    try:
        wait_until(lambda: server.answers(f"{gateway.url}/readyz"), 30.0, "bastion serve to be ready")
        yield gateway
    finally:
        server.stop()


@pytest.fixture(scope="module")
def routing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Routing]:
    home = tmp_path_factory.mktemp("routing")
    with ExitStack() as stack:
        fakes = {name: stack.enter_context(running(home, name)) for name in FAKES}
        gateway = stack.enter_context(serving(home, {name: upstream.url for name, upstream in fakes.items()}))
        keys = {project: gateway.create_key(project, "--name", "routing") for project in (EU, ANYWHERE)}
        yield Routing(gateway, fakes, keys)


@pytest.fixture(autouse=True)
def fresh(routing: Routing) -> None:
    """No fault in force, nothing received, every counter at zero."""
    for upstream in routing.fakes.values():
        upstream.reset()


def ask(text: str = PROMPT) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def answer_to(text: str = PROMPT) -> str:
    """What a fake answers to ``text``, as the client reads it: placeholders restored."""
    return fake.reply_text({"messages": ask(text)}, 0)


def sleep_until(instant: float) -> None:
    """Wait out a circuit's cool-down (real processes: the gateway's clock cannot be frozen), with a margin."""
    time.sleep(max(0.0, instant - time.monotonic()) + 0.1)


def only(entries: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [entry for entry in entries if entry["action"] == action]


def route(scenario: str, name: str) -> dict[str, Any]:
    """A provider as an audit entry names where a request went."""
    spec = FAKES[name]
    return {"provider": f"{scenario}-{name}", "region": spec["region"], "residency": spec["residency"]}


# Failover inside the eligible set ---------------------------------------------------------------------------------


def test_a_failed_provider_is_skipped_for_the_next_eligible_one(routing: Routing) -> None:
    routing.fakes["eu-a"].set_fault(down=True)  # every connection reset
    completion = routing.sdk().chat(model="gpt-failover", messages=ask())
    assert completion.system_fingerprint == "eu-b"
    assert completion.choices[0].message.content == answer_to()
    assert routing.counts() == {"eu-a": 1, "eu-b": 1, "eu-c": 0, "us": 0}


def test_a_retried_request_is_the_same_request(routing: Routing) -> None:
    routing.fakes["eu-a"].set_fault(error_rate=1.0, status=500)
    headers, _, completion = routing.sdk().raw_chat(model="gpt-retry", messages=ask())
    assert completion.system_fingerprint == "eu-b"
    # Both upstreams got the same body: the same placeholder for the same address, never the address.
    (first,), (second,) = routing.chats("eu-a"), routing.chats("eu-b")
    assert first == second
    assert first["messages"] == ask(SENT)
    assert routing.chats("us") == []
    # One request id; each attempt recorded before it left, the failed one followed by its retry.
    entries = routing.audit(headers["x-bastion-request-id"])
    assert [entry["action"] for entry in entries] == [
        "request.forwarded",
        "request.retried",
        "request.forwarded",
        "request.completed",
    ]
    forwarded = only(entries, "request.forwarded")
    assert [entry["route"] for entry in forwarded] == [route("retry", "eu-a"), route("retry", "eu-b")]
    assert forwarded[0]["request_hash"] == forwarded[1]["request_hash"]
    (retried,) = only(entries, "request.retried")
    assert (retried["provider"], retried["status"], retried["reason"]) == ("retry-eu-a", 502, "upstream_unavailable")
    reasoning = forwarded[0]["routing"]
    assert reasoning["eligible"] == [route("retry", "eu-a"), route("retry", "eu-b")]
    assert reasoning["excluded"] == [{"provider": "retry-us", "residency": "us", "rules": ["residency"]}]
    assert reasoning["requirement"]["residency"] == ["eu"]
    (completed,) = only(entries, "request.completed")
    assert (completed["provider"], completed["status"]) == ("retry-eu-b", 200)


def test_eu_personal_data_is_refused_not_sent_to_the_us_when_the_eu_is_down(routing: Routing) -> None:
    for name in ("eu-a", "eu-b"):
        routing.fakes[name].set_fault(down=True)
    eu = routing.sdk(EU)
    # The EU endpoints fail (and their circuits open); the US endpoint is never tried.
    for _ in range(2):
        with pytest.raises(openai.APIStatusError) as failed:
            eu.chat(model="gpt-residency", messages=ask())
        assert failed.value.status_code in (502, 503)
    assert {routing.circuit("residency-eu-a"), routing.circuit("residency-eu-b")} == {"open"}
    with pytest.raises(openai.APIStatusError) as refused:
        eu.chat(model="gpt-residency", messages=ask())
    assert (refused.value.status_code, refused.value.code) == (503, "no_eligible_upstream")
    message = refused.value.message
    assert "project 'eu-data' allows residency eu and the data (confidential; pii) requires dpa" in message
    assert "residency-us is in residency us" in message
    assert "residency-eu-a is unhealthy (circuit open)" in message
    assert "residency-eu-b is unhealthy (circuit open)" in message
    assert routing.chats("us") == []
    # A project that allows any residency is served by the US endpoint: only the rule kept the data in the EU.
    served = routing.sdk(ANYWHERE).chat(model="gpt-residency", messages=ask())
    assert served.system_fingerprint == "us"
    assert routing.chats("us") == [{"model": "fake-ok", "messages": ask(SENT)}]


# Circuit breakers -------------------------------------------------------------------------------------------------


def test_a_breaker_opens_after_failures_in_a_row_and_closes_after_a_successful_probe(routing: Routing) -> None:
    eu_a, sdk = routing.fakes["eu-a"], routing.sdk()
    eu_a.set_fault(error_rate=1.0, status=500)
    assert sdk.chat(model="gpt-breaker", messages=ask()).system_fingerprint == "eu-b"
    before = time.monotonic()
    assert sdk.chat(model="gpt-breaker", messages=ask()).system_fingerprint == "eu-b"  # failures: 2
    opened = time.monotonic()  # the circuit opened between these two instants
    assert routing.circuit("breaker-eu-a") == "open"
    eu_a.reset()  # healthy again, but the circuit stays open for its cool-down: no request reaches it
    for _ in range(3):
        assert sdk.chat(model="gpt-breaker", messages=ask()).system_fingerprint == "eu-b"
    assert time.monotonic() - before < COOLDOWN, "too slow to check the cool-down"
    assert routing.counts()["eu-a"] == 0
    # After the cool-down one request probes it (half-open); a failure opens the circuit again.
    eu_a.set_fault(error_rate=1.0, status=500)
    sleep_until(opened + COOLDOWN)
    assert sdk.chat(model="gpt-breaker", messages=ask()).system_fingerprint == "eu-b"
    reopened = time.monotonic()
    assert (routing.counts()["eu-a"], routing.circuit("breaker-eu-a")) == (1, "open")
    assert sdk.chat(model="gpt-breaker", messages=ask()).system_fingerprint == "eu-b"
    assert routing.counts()["eu-a"] == 1
    # The next probe succeeds: the circuit closes and the endpoint takes traffic again.
    eu_a.reset()
    sleep_until(reopened + COOLDOWN)
    assert sdk.chat(model="gpt-breaker", messages=ask()).system_fingerprint == "eu-a"
    assert routing.circuit("breaker-eu-a") == "closed"
    assert sdk.chat(model="gpt-breaker", messages=ask()).system_fingerprint == "eu-a"


def test_a_breaker_opens_on_its_error_rate(routing: Routing) -> None:
    eu_a, sdk = routing.fakes["eu-a"], routing.sdk()
    eu_a.set_fault(error_rate=0.5, status=503)  # every other request fails: never two failures in a row
    sent = 0
    while routing.circuit("rate-eu-a") == "closed":
        assert sdk.chat(model="gpt-rate", messages=ask()).choices[0].message.content == answer_to()
        sent += 1
        assert sent <= 12, "the error rate never opened the circuit"
    stats = eu_a.stats()
    # At least min_requests (4) seen, and half of them failed, before it opened on a failure.
    assert stats["requests"] >= 4
    assert stats["by_status"]["503"] >= stats["requests"] / 2
    for _ in range(3):
        assert sdk.chat(model="gpt-rate", messages=ask()).system_fingerprint == "eu-b"
    assert eu_a.stats()["requests"] == stats["requests"]


def test_a_rate_limited_provider_is_skipped_without_waiting_and_keeps_its_circuit(routing: Routing) -> None:
    routing.fakes["eu-a"].set_fault(error_rate=1.0, status=429, retry_after=30)
    started = time.monotonic()
    for _ in range(3):
        assert routing.sdk().chat(model="gpt-busy", messages=ask()).system_fingerprint == "eu-b"
    assert time.monotonic() - started < 5  # the Retry-After of another endpoint is not waited for
    # Three 429s in a row: busy, not broken. The circuit (failures: 2) stays closed.
    assert routing.counts()["eu-a"] == 3
    assert routing.circuit("busy-eu-a") == "closed"


def test_retry_after_is_honoured_on_the_same_provider(routing: Routing) -> None:
    eu_a = routing.fakes["eu-a"]
    eu_a.set_fault(error_rate=0.5, status=429, retry_after=1)  # the first request is refused, the second served
    started = time.monotonic()
    completion = routing.sdk().chat(model="gpt-retry-after", messages=ask())
    assert time.monotonic() - started >= 1.0
    assert completion.system_fingerprint == "eu-a"
    first, second = routing.chats("eu-a")
    assert first == second


def test_a_retry_after_beyond_the_budget_reaches_the_client_at_once(routing: Routing) -> None:
    routing.fakes["eu-a"].set_fault(error_rate=1.0, status=429, retry_after=60)
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as limited:
        routing.sdk().chat(model="gpt-retry-after", messages=ask())
    assert time.monotonic() - started < BUDGET
    assert limited.value.response.headers["retry-after"] == "60"
    assert limited.value.body == fake.ERROR_429["error"]
    assert routing.counts()["eu-a"] == 1


# Streams ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "fault"),
    [
        ("stream-stall", {"stall_before": True}),
        ("stream-down", {"down": True}),
        ("stream-headers", {"stall_after_headers": True}),
    ],
    ids=["stalled-before-headers", "down", "stalled-after-headers"],
)
def test_a_stream_fails_over_before_its_first_event(routing: Routing, scenario: str, fault: dict[str, Any]) -> None:
    routing.fakes["eu-a"].set_fault(**fault)
    chunks = routing.sdk().stream(model=f"gpt-{scenario}", messages=ask())
    assert {chunk.system_fingerprint for chunk in chunks} == {"eu-b"}
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == answer_to()
    (tried,), (served,) = routing.chats("eu-a"), routing.chats("eu-b")
    assert tried == served
    assert served["stream"] is True
    assert routing.chats("us") == []


def test_a_slow_stream_within_its_timeouts_is_not_failed_over(routing: Routing) -> None:
    # Late headers and a pause before every event, each shorter than its timeout, the whole well over it.
    routing.fakes["eu-a"].set_fault(latency=TIMEOUT * 0.6, trickle=TIMEOUT * 0.2)
    started = time.monotonic()
    chunks = routing.sdk().stream(model="gpt-stream-slow", messages=ask())
    assert time.monotonic() - started > 2 * TIMEOUT
    assert {chunk.system_fingerprint for chunk in chunks} == {"eu-a"}
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == answer_to()
    assert routing.counts() == {"eu-a": 1, "eu-b": 0, "eu-c": 0, "us": 0}
    assert routing.circuit("stream-slow-eu-a") == "closed"


def test_a_stream_that_stalls_after_its_first_event_ends_with_an_error_event(routing: Routing) -> None:
    routing.fakes["eu-a"].set_fault(stall_during=True)
    chunks: list[Any] = []
    with pytest.raises(openai.APIError) as broken:
        routing.sdk().stream(into=chunks, model="gpt-stream-midway", messages=ask())
    assert type(broken.value) is openai.APIError  # an SSE error event, not a broken connection
    assert isinstance(broken.value.body, dict)
    assert broken.value.body["code"] == "upstream_unavailable"
    # The client got the first events from eu-a, so there was no failover.
    assert chunks
    assert {chunk.system_fingerprint for chunk in chunks} == {"eu-a"}
    assert routing.counts() == {"eu-a": 1, "eu-b": 0, "eu-c": 0, "us": 0}


# Provider kinds ---------------------------------------------------------------------------------------------------


def test_an_azure_provider_gets_the_deployment_route_version_and_key(routing: Routing) -> None:
    completion = routing.sdk().chat(model="gpt-azure", messages=ask())
    assert completion.system_fingerprint == "eu-b"
    assert completion.choices[0].message.content == answer_to()
    record = routing.fakes["eu-b"].last()
    assert (record["path"], record["query"]) == (
        "/openai/deployments/fake-ok/chat/completions",
        {"api-version": API_VERSION},
    )
    assert (record["auth"], record["headers"]["api-key"]) == ("api-key", AZURE_KEY)
    assert "authorization" not in record["headers"]
    assert record["body"]["messages"] == ask(SENT)


# Attestations -----------------------------------------------------------------------------------------------------


def test_an_expired_attestation_removes_a_provider_for_the_data_that_needs_it(routing: Routing) -> None:
    sdk = routing.sdk()
    # Data without personal data needs no attestation: eu-c, first by priority, serves it.
    assert sdk.chat(model="gpt-lapsed", messages=ask("What is our returns policy?")).system_fingerprint == "eu-c"
    # An e-mail address makes it confidential, which needs a dpa; eu-c's vendor's lapsed three days ago.
    headers, _, completion = sdk.raw_chat(model="gpt-lapsed", messages=ask())
    assert completion.system_fingerprint == "eu-a"
    assert routing.counts() == {"eu-a": 1, "eu-b": 0, "eu-c": 1, "us": 0}
    (forwarded,) = only(routing.audit(headers["x-bastion-request-id"]), "request.forwarded")
    lapsed = str(TODAY - timedelta(days=3))
    assert forwarded["routing"]["excluded"] == [
        {"provider": "lapsed-eu-c", "rules": ["attestation"], "lacks": [{"type": "dpa", "expired": lapsed}]}
    ]
    with pytest.raises(openai.APIStatusError) as refused:
        sdk.chat(model="gpt-lapsed-only", messages=ask())
    assert (refused.value.status_code, refused.value.code) == (503, "no_eligible_upstream")
    assert f"lapsed-only-eu-c lacks dpa (expired {lapsed})" in refused.value.message
    assert routing.counts()["eu-c"] == 1


def test_readyz_and_the_vendor_report_name_expired_and_expiring_attestations(routing: Routing) -> None:
    notices = routing.readyz()["attestations"]
    assert notices == [
        {
            "vendor": "lapsed",
            "type": "dpa",
            "expires": str(TODAY - timedelta(days=3)),
            "days_left": -3,
            "expired": True,
        },
        {
            "vendor": "contoso",
            "type": "dpa",
            "expires": str(TODAY + timedelta(days=20)),
            "days_left": 20,
            "expired": False,
        },
    ]
    report = json.loads(routing.gateway.cli("report", "vendors", "--format", "json").stdout)
    rows = report["sections"]["attestations"]["rows"]
    assert {(row["vendor"], row["status"], row["days_left"]) for row in rows} == {
        ("acme", "valid", 400),
        ("contoso", "expiring", 20),
        ("lapsed", "expired", -3),
    }
    assert (report["summary"]["expiring"], report["summary"]["expired"]) == (1, 1)
    holds = {row["provider"]: row["holds"] for row in report["sections"]["providers"]["rows"]}
    assert (holds["lapsed-eu-c"], holds["azure-eu-b"]) == ("", "dpa")


# Providers and vendors over the admin API -------------------------------------------------------------------------


def test_a_provider_and_vendor_added_over_the_admin_api_are_routed_by_within_the_rules(routing: Routing) -> None:
    admin = {"Authorization": "Bearer " + routing.gateway.create_key(EU, "--member", OPS)}
    api = f"{routing.gateway.url}/admin/v1"
    lapsed = {"type": "dpa", "expires": str(TODAY - timedelta(days=1))}
    vendor = httpx.post(f"{api}/vendors", json={"name": "late-signer", "attestations": [lapsed]}, headers=admin)
    spec = {
        "name": "api-eu-a",
        "kind": "openai",
        "vendor": "late-signer",
        "residency": "eu",
        "region": "eu-north-1",
        "base_url": f"{routing.fakes['eu-a'].url}/v1",
        "api_key_env": OPENAI_KEY_ENV,
        "models": {"gpt-api": "fake-ok"},
    }
    created = httpx.post(f"{api}/providers", json=spec, headers=admin)
    assert (vendor.status_code, created.status_code) == (201, 201), created.text
    sdk = routing.sdk()
    # Personal data needs a dpa, which the new vendor's lapsed: refused, and nothing was sent.
    with pytest.raises(openai.APIStatusError) as refused:
        sdk.chat(model="gpt-api", messages=ask())
    assert (refused.value.status_code, refused.value.code) == (503, "no_eligible_upstream")
    assert "api-eu-a lacks dpa" in refused.value.message
    assert routing.counts()["eu-a"] == 0
    # The renewed contract is recorded: the same request now goes, protected, with the key from the environment.
    renewed = {"type": "dpa", "expires": str(TODAY + timedelta(days=365)), "evidence": {"document": "dpa-2027.pdf"}}
    patched = httpx.patch(f"{api}/vendors/late-signer", json={"attestations": [renewed]}, headers=admin)
    assert patched.json()["attestations"][0]["status"] == "valid"
    headers, _, completion = sdk.raw_chat(model="gpt-api", messages=ask())
    assert completion.choices[0].message.content == answer_to()
    (received,) = routing.fakes["eu-a"].received()
    assert received["body"]["messages"] == ask(SENT)
    assert received["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
    (forwarded,) = only(routing.audit(headers["x-bastion-request-id"]), "request.forwarded")
    assert forwarded["route"] == {"provider": "api-eu-a", "region": "eu-north-1", "residency": "eu"}
    # A project member cannot change where data goes.
    member = {"Authorization": f"Bearer {routing.keys[EU]}"}
    denied = httpx.delete(f"{api}/providers/api-eu-a", headers=member)
    assert denied.status_code == 403
