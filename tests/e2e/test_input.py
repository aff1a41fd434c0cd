"""Bad input gets a clear 4xx in OpenAI's error envelope, and nothing reaches the upstream."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.conftest import MAX_BODY

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

    from tests.e2e.conftest import Upstream

pytestmark = pytest.mark.e2e

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
MESSAGES = [{"role": "user", "content": "hello"}]
JSON = "application/json"


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def assert_refused(response: httpx.Response, status: int, code: str, param: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(JSON)
    assert response.headers["x-bastion-request-id"].startswith("req_")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["code"], error["param"]) == (code, param)
    assert error["type"] == "invalid_request_error"
    assert error["message"].endswith(".")  # a sentence that says what is wrong
    if param is not None:
        assert param.partition("[")[0] in error["message"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("path", "content", "content_type", "status", "code", "param"),
    [
        (CHAT, b'{"model": "gpt-test", "messages": [', JSON, 400, "invalid_json", None),
        (CHAT, b"", JSON, 400, "invalid_json", None),
        (CHAT, b'["gpt-test", "hello"]', JSON, 400, "invalid_json", None),
        (CHAT, body(model="gpt-test", messages="hello"), JSON, 400, "invalid_parameter", "messages"),
        (CHAT, body(model="gpt-test", messages=[]), JSON, 400, "invalid_parameter", "messages"),
        (CHAT, body(model="gpt-test", messages=[{"content": "x"}]), JSON, 400, "invalid_parameter", "messages[0]"),
        (CHAT, body(model=4, messages=MESSAGES), JSON, 400, "invalid_parameter", "model"),
        (CHAT, body(model="gpt-test", messages=MESSAGES, stream="yes"), JSON, 400, "invalid_parameter", "stream"),
        (CHAT, body(model="gpt-test", messages=MESSAGES, n=0), JSON, 400, "invalid_parameter", "n"),
        (CHAT, body(messages=MESSAGES), JSON, 400, "missing_required_parameter", "model"),
        (CHAT, body(model="gpt-test"), JSON, 400, "missing_required_parameter", "messages"),
        (EMBEDDINGS, body(model="text-embedding-test"), JSON, 400, "missing_required_parameter", "input"),
        (EMBEDDINGS, body(model="text-embedding-test", input=5), JSON, 400, "invalid_parameter", "input"),
        (CHAT, body(model="gpt-unknown", messages=MESSAGES), JSON, 404, "model_not_found", "model"),
        (CHAT, body(model="gpt-test", messages=MESSAGES), "text/plain", 415, "unsupported_media_type", None),
        (
            CHAT,
            body(model="gpt-test", messages=MESSAGES),
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
            None,
        ),
    ],
    ids=[
        "invalid-json",
        "empty-body",
        "json-not-an-object",
        "messages-a-string",
        "messages-empty",
        "message-without-role",
        "model-a-number",
        "stream-not-a-bool",
        "n-zero",
        "missing-model",
        "missing-messages",
        "embeddings-missing-input",
        "embeddings-input-a-number",
        "unknown-model",
        "text-plain",
        "form-encoded",
    ],
)
def test_bad_request_is_refused_with_a_clear_error(
    http: httpx.Client,
    auth: dict[str, str],
    upstream: Upstream,
    path: str,
    content: bytes,
    content_type: str,
    status: int,
    code: str,
    param: str | None,
) -> None:
    response = http.post(path, headers={**auth, "Content-Type": content_type}, content=content)
    assert_refused(response, status, code, param)
    assert upstream.received() == []


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [("GET", CHAT, 405, "method_not_allowed"), ("POST", "/v1/completions-of-some-other-kind", 404, "not_found")],
    ids=["wrong-method", "unknown-path"],
)
def test_wrong_method_or_path_is_refused(
    http: httpx.Client, auth: dict[str, str], upstream: Upstream, method: str, path: str, status: int, code: str
) -> None:
    response = http.request(method, path, headers=auth, json={"model": "gpt-test", "messages": MESSAGES})
    assert_refused(response, status, code)
    assert upstream.received() == []


def chat_of_size(size: int) -> bytes:
    """A valid chat request of exactly ``size`` bytes."""
    empty = body(model="gpt-test", messages=[{"role": "user", "content": ""}])
    filled = body(model="gpt-test", messages=[{"role": "user", "content": "x" * (size - len(empty))}])
    assert len(filled) == size
    return filled


def in_pieces(content: bytes) -> Iterator[bytes]:
    """Sent without Content-Length (chunked), so Bastion must count the bytes as they arrive."""
    for start in range(0, len(content), 4096):
        yield content[start : start + 4096]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_max_body_bytes_is_refused(
    http: httpx.Client, auth: dict[str, str], upstream: Upstream, chunked: bool
) -> None:
    content = chat_of_size(MAX_BODY + 1)
    headers = {**auth, "Content-Type": JSON}
    response = http.post(CHAT, headers=headers, content=in_pieces(content) if chunked else content)
    assert_refused(response, 413, "request_too_large")
    assert str(MAX_BODY) in response.json()["error"]["message"]
    assert upstream.received() == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_of_exactly_max_body_bytes_is_served(
    http: httpx.Client, auth: dict[str, str], upstream: Upstream, chunked: bool
) -> None:
    content = chat_of_size(MAX_BODY)
    headers = {**auth, "Content-Type": JSON}
    response = http.post(CHAT, headers=headers, content=in_pieces(content) if chunked else content)
    assert response.status_code == 200
    assert upstream.last()["body"] == {**json.loads(content), "model": "fake-ok"}
