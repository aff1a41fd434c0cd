"""Request ids on every response; ``/healthz``, ``/readyz`` and ``/metrics`` of a running gateway."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    import httpx

    from tests.e2e.conftest import Gateway, Upstream

pytestmark = pytest.mark.e2e

CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "are you there?"}]
REQUEST_ID = re.compile(r"^req_[0-9a-f]{24}$")


def chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": MESSAGES, **extra}


@pytest.mark.parametrize(
    ("method", "path", "payload", "authorised", "status"),
    [
        ("POST", CHAT, chat("gpt-test"), True, 200),
        ("POST", CHAT, chat("gpt-test", stream=True), True, 200),
        ("POST", CHAT, chat("echo-1"), True, 200),
        ("GET", "/v1/models", None, True, 200),
        ("POST", CHAT, chat("gpt-test"), False, 401),
        ("POST", CHAT, chat("gpt-400"), True, 400),
        ("POST", CHAT, chat("gpt-500"), True, 502),
        ("POST", CHAT, {"model": "gpt-test"}, True, 400),
        ("GET", "/nowhere", None, False, 404),
        ("GET", "/healthz", None, False, 200),
        ("GET", "/readyz", None, False, 200),
        ("GET", "/metrics", None, False, 200),
    ],
    ids=[
        "chat",
        "chat-stream",
        "echo",
        "models",
        "no-key",
        "upstream-400",
        "upstream-500",
        "bad-input",
        "unknown-path",
        "healthz",
        "readyz",
        "metrics",
    ],
)
def test_every_response_carries_a_fresh_request_id(
    http: httpx.Client,
    auth: dict[str, str],
    upstream: Upstream,
    method: str,
    path: str,
    payload: dict[str, Any] | None,
    authorised: bool,
    status: int,
) -> None:
    headers = auth if authorised else {}
    ids = []
    for _ in range(2):
        response = http.request(method, path, headers=headers, json=payload)
        assert response.status_code == status
        ids.append(response.headers["x-bastion-request-id"])
    assert all(REQUEST_ID.match(value) for value in ids), ids
    assert ids[0] != ids[1]


def test_healthz_says_the_process_answers(http: httpx.Client) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readyz_checks_the_store_and_the_upstreams(http: httpx.Client, gateway: Gateway) -> None:
    response = http.get("/readyz")
    assert response.status_code == 200
    ready = response.json()
    assert ready["status"] == "ready"
    assert ready["checks"]["store"] == "ok"
    assert ready["checks"]["upstreams"] == len(gateway.providers)


def samples(http: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics`` by name and labels."""
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.parametrize(
    ("model", "stream", "provider", "status", "client_status"),
    [
        ("gpt-500", False, "fake", "502", 502),
        ("gpt-down", True, "down", "502", 502),
        ("gpt-slow", False, "fake-slow", "504", 504),
        ("gpt-truncate", True, "fake", "502", 200),  # the stream had begun: an error event, then the end
    ],
    ids=["upstream-500", "refused", "timeout", "cut-mid-stream"],
)
def test_metrics_count_requests_latency_and_upstream_errors(
    http: httpx.Client,
    auth: dict[str, str],
    model: str,
    stream: bool,
    provider: str,
    status: str,
    client_status: int,
) -> None:
    before = samples(http)
    assert http.post(CHAT, headers=auth, json=chat("gpt-test")).status_code == 200
    assert http.post(CHAT, headers=auth, json=chat(model, stream=stream)).status_code == client_status
    # A stream's duration is observed once its last frame has gone out, which can be just after
    # the client has read it: wait a moment for the second observation.
    deadline = time.monotonic() + 5
    while True:
        after = samples(http)
        counted = value(after, "bastion_request_duration_seconds_count", endpoint="chat.completions")
        if counted - value(before, "bastion_request_duration_seconds_count", endpoint="chat.completions") >= 2:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("bastion_upstream_errors_total", provider=provider, status=status) == 1
    assert grew("bastion_requests_total", endpoint="chat.completions", status="200") >= 1
    assert grew("bastion_requests_total", endpoint="chat.completions", status=str(client_status)) >= 1
    assert grew("bastion_request_duration_seconds_count", endpoint="chat.completions") >= 2
    assert grew("bastion_request_duration_seconds_bucket", endpoint="chat.completions", le="+Inf") >= 2
