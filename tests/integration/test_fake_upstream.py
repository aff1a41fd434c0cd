"""The fake upstream's faults do what failover and streaming tests rely on; it runs in its own process."""

from __future__ import annotations

import json
import socket
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from tests.fakes import upstream as fake
from tests.fakes.control import FakeUpstream, running
from tests.fakes.faults import pieces, rng_for
from tests.processes import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

NAME = "west"
CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "héllo [EMAIL_1]"}]


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeUpstream]:
    with running(tmp_path_factory.mktemp("fake"), name=NAME) as server:
        yield server


@pytest.fixture
def upstream(fake_server: FakeUpstream) -> FakeUpstream:
    fake_server.reset()
    return fake_server


def chat(upstream: FakeUpstream, model: str = "fake-ok", timeout: float = 5.0, **body: Any) -> httpx.Response:
    return httpx.post(f"{upstream.url}{CHAT}", json={"model": model, "messages": MESSAGES, **body}, timeout=timeout)


def stream_body(model: str = "fake-ok") -> bytes:
    return json.dumps({"model": model, "messages": MESSAGES, "stream": True}).encode()


def raw_chunks(upstream: FakeUpstream, body: bytes) -> list[bytes]:
    """The chunks of a chunked HTTP answer as they were framed on the wire, one per write of the server."""
    port = int(upstream.url.rsplit(":", 1)[1])
    head = f"POST {CHAT} HTTP/1.1\r\nHost: fake\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode() + body)
        data = b"".join(iter(lambda: sock.recv(65536), b""))
    rest = data.partition(b"\r\n\r\n")[2]
    chunks = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return chunks
        chunks.append(rest[:size])
        rest = rest[size + 2 :]


def expected_events(body: bytes) -> list[bytes]:
    events = [*fake.chunks(json.loads(body), NAME), "[DONE]"]
    return [b"data: " + (e if isinstance(e, str) else json.dumps(e)).encode() + b"\n\n" for e in events]


def test_error_rate_fails_that_fraction_of_requests_evenly(upstream: FakeUpstream) -> None:
    upstream.set_fault(error_rate=0.5, status=500)
    statuses = [chat(upstream, model).status_code for model in ("fake-ok", "fake-400", "fake-ok", "nonexistent")]
    assert statuses == [500, 200, 500, 200]  # the fault overrides what the model names would do
    assert upstream.stats() == {"name": NAME, "requests": 4, "failed": 2, "by_status": {"500": 2, "200": 2}}


def test_an_injected_429_says_when_to_retry(upstream: FakeUpstream) -> None:
    upstream.set_fault(error_rate=1, status=429, retry_after=3)
    response = chat(upstream)
    assert (response.status_code, response.headers["retry-after"]) == (429, "3")
    assert response.json() == fake.ERROR_429


def test_down_resets_every_connection(upstream: FakeUpstream) -> None:
    upstream.set_fault(down=True)
    with pytest.raises(httpx.TransportError):
        chat(upstream)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{upstream.url}/v1/models")
    wait_until(lambda: upstream.stats()["by_status"].get("aborted") == 2, 5.0, "both resets to be counted")


def test_latency_delays_the_headers(upstream: FakeUpstream) -> None:
    upstream.set_fault(latency=0.3)
    started = time.monotonic()
    assert chat(upstream).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_stall_before_never_sends_the_headers(upstream: FakeUpstream) -> None:
    upstream.set_fault(stall_before=True)
    with pytest.raises(httpx.ReadTimeout):
        chat(upstream, timeout=0.5)
    wait_until(lambda: upstream.stats()["failed"] == 1, 5.0, "the stalled request to be counted as failed")


def test_stall_during_sends_a_few_events_then_hangs(upstream: FakeUpstream) -> None:
    upstream.set_fault(stall_during=True)
    lines: list[str] = []
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream("POST", f"{upstream.url}{CHAT}", content=stream_body(), timeout=0.5) as response,
    ):
        lines.extend(line for line in response.iter_lines() if line)
    assert len(lines) == fake.PREFIX_EVENTS


def test_trickle_spaces_the_events(upstream: FakeUpstream) -> None:
    upstream.set_fault(trickle=0.05)
    started = time.monotonic()
    events = raw_chunks(upstream, stream_body())
    assert time.monotonic() - started >= 0.05 * (len(expected_events(stream_body())) - 1)
    assert b"".join(events) == b"".join(expected_events(stream_body()))


def test_split_chars_writes_one_byte_at_a_time(upstream: FakeUpstream) -> None:
    upstream.set_fault(split="chars")
    written = raw_chunks(upstream, stream_body())
    assert {len(piece) for piece in written} == {1}
    assert b"".join(written) == b"".join(expected_events(stream_body()))


def test_split_random_cuts_each_event_where_the_requests_seed_says(upstream: FakeUpstream) -> None:
    upstream.set_fault(split="random")
    body = stream_body()
    written = raw_chunks(upstream, body)
    rng = rng_for(CHAT, body)
    assert written == [piece for event in expected_events(body) for piece in pieces(event, "random", rng)]
    assert raw_chunks(upstream, body) == written  # the same request is cut the same way again


def test_without_a_fault_each_event_goes_out_in_two_halves(upstream: FakeUpstream) -> None:
    events = expected_events(stream_body())
    assert raw_chunks(upstream, stream_body()) == [
        half for e in events for half in (e[: len(e) // 2], e[len(e) // 2 :])
    ]


def test_fake_chars_streams_one_character_a_delta(upstream: FakeUpstream) -> None:
    body = stream_body("fake-chars")
    chunks = [json.loads(event[6:]) for event in expected_events(body)[1:-2]]
    deltas = [chunk["choices"][0]["delta"]["content"] for chunk in chunks]
    assert deltas == list(fake.reply_text(json.loads(body), 0))
    assert b"".join(raw_chunks(upstream, body)) == b"".join(expected_events(body))


def test_every_answer_names_the_fake_that_served_it(upstream: FakeUpstream) -> None:
    response = chat(upstream, model="fake-400")
    assert response.headers["x-fake-upstream"] == NAME
    assert chat(upstream).json()["system_fingerprint"] == NAME


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ({"status": 500}, "'status' needs 'error_rate'"),
        ({"error_rate": 2}, "'error_rate' is a fraction"),
        ({"down": 1}, "'down' cannot be 1"),
        ({"split": "words"}, "'split' is one of chars, random"),
        ({"explode": True}, "unknown fault 'explode'"),
    ],
)
def test_a_wrong_fault_is_refused_and_changes_nothing(upstream: FakeUpstream, fault: dict[str, Any], says: str) -> None:
    response = httpx.post(f"{upstream.url}/_fault", json=fault)
    assert response.status_code == 400
    assert says in response.json()["error"]["message"]
    assert httpx.get(f"{upstream.url}/_fault").json() is None


def test_deleting_the_fault_restores_the_model_behaviours(upstream: FakeUpstream) -> None:
    upstream.set_fault(error_rate=1, status=503)
    assert chat(upstream).status_code == 503
    httpx.delete(f"{upstream.url}/_fault").raise_for_status()
    assert [chat(upstream, model).status_code for model in ("fake-ok", "fake-400")] == [200, 400]


@pytest.mark.parametrize(
    ("query", "headers", "status"),
    [
        ("", {"api-key": "k"}, 404),  # Azure does not know the route without an api-version
        ("?api-version=2024-10-21", {"Authorization": "Bearer k"}, 401),
        ("?api-version=2024-10-21", {"api-key": "k"}, 200),
    ],
)
def test_azure_routes_need_an_api_version_and_an_api_key(
    upstream: FakeUpstream, query: str, headers: dict[str, str], status: int
) -> None:
    url = f"{upstream.url}/openai/deployments/fake-ok/chat/completions{query}"
    response = httpx.post(url, json={"messages": MESSAGES}, headers=headers)
    assert response.status_code == status
    assert upstream.last()["auth"] == ("api-key" if "api-key" in headers else "bearer")


def test_a_fault_given_at_start_is_in_force_from_the_first_request(tmp_path: Path) -> None:
    with running(tmp_path, fault='{"error_rate": 1, "status": 503, "retry_after": 2}') as started:
        response = httpx.post(f"{started.url}{CHAT}", json={"model": "fake-ok", "messages": MESSAGES})
    assert (response.status_code, response.headers["retry-after"]) == (503, "2")
    assert "x-fake-upstream" not in response.headers  # an unnamed fake answers as it always did
