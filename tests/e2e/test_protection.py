"""Data protection through the real gateway: the upstream sees placeholders, the openai SDK gets the values back.

The fake upstream quotes the last message it received, so what it answers is what it was sent: a restored answer
equal to the caller's own words proves the round trip (tokenise, model, restore). Streams are split one character
an event (``gpt-chars``) and byte by byte or at random offsets (``/_fault`` ``split``).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import openai
import pytest

from tests.e2e.conftest import (
    PROJECT,
    REDACTING_PROJECT,
    REGULATED_PROJECT,
    SDK,
    VAULTED_PROJECT,
)
from tests.fakes import upstream as fake

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

    from tests.e2e.conftest import Gateway, Upstream

pytestmark = pytest.mark.e2e

EMAIL = "dana.whitfield@example.com"
OTHER_EMAIL = "li.wei@example.org"
PHONE = "+44 20 7946 0958"
IBAN = "GB82 WEST 1234 5698 7654 32"
CARD = "4111 1111 1111 1111"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
# Non-ASCII on purpose: a byte-by-byte split cuts "ë" and "€" in half.
PROMPT = f"Zoë here: write to {EMAIL} or call {PHONE}; refund 12 € to {IBAN}, thanks."
TOKENISED = "Zoë here: write to [EMAIL_ADDRESS_1] or call [PHONE_NUMBER_1]; refund 12 € to [IBAN_CODE_1], thanks."
ALICE = "alice.private@example.net"
PROJECTS = (PROJECT, VAULTED_PROJECT)
VALUES = (EMAIL, OTHER_EMAIL, PHONE, IBAN, CARD, AWS_KEY)
PLACEHOLDER = re.compile(r"\[[A-Z_]+_\d+\]")
CHAT = "/v1/chat/completions"


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def answer(text: str, index: int = 0) -> str:
    """What the client must read when the upstream quoted ``text``, the caller's own words, restored."""
    return fake.reply_text({"messages": [{"content": text}]}, index)


def assert_absent(values: tuple[str, ...] | list[str], where: str) -> None:
    """None of the values occurs in ``where``, as written or without its spaces."""
    for value in values:
        assert value not in where
        compact = value.replace(" ", "")
        assert compact not in where


def sent_content(record: dict[str, Any], index: int = -1) -> str:
    content: str = record["body"]["messages"][index]["content"]
    return content


def placeholder_of(text: str, kind: str) -> str:
    (found,) = re.findall(rf"\[{kind}_\d+\]", text)
    return str(found)


def number(placeholder: str) -> int:
    return int(placeholder.strip("[]").rpartition("_")[2])


@pytest.fixture
def faulty(upstream: Upstream) -> Iterator[Upstream]:
    """The upstream, with whatever fault a test puts in force cleared afterwards."""
    try:
        yield upstream
    finally:
        upstream.clear_fault()


# Round trip -------------------------------------------------------------------------------------------------------


def test_the_upstream_gets_placeholders_and_the_client_the_original_values(sdk: SDK, upstream: Upstream) -> None:
    headers, raw, completion = sdk.raw_chat(model="gpt-test", messages=ask(PROMPT))
    (record,) = upstream.received()
    assert record["body"] == {**sdk.sent[-1], "model": "fake-ok", "messages": ask(TOKENISED)}
    assert_absent(VALUES, json.dumps(record, ensure_ascii=False))
    assert completion.choices[0].message.content == answer(PROMPT)
    assert raw["choices"][0]["message"]["content"] == answer(PROMPT)
    assert completion.usage.total_tokens == fake.USAGE["total_tokens"]
    assert headers["x-bastion-data-class"] == "regulated"  # an IBAN is payment data


def test_one_value_gets_one_placeholder_across_messages_and_spellings(sdk: SDK, upstream: Upstream) -> None:
    messages = [
        {"role": "system", "content": f"The customer is {EMAIL}, phone {PHONE}."},
        {"role": "user", "content": f"Mail {EMAIL} and {OTHER_EMAIL}, then {EMAIL} again; or ring +442079460958."},
    ]
    completion = sdk.chat(model="gpt-test", messages=messages)
    (record,) = upstream.received()
    assert [m["content"] for m in record["body"]["messages"]] == [
        "The customer is [EMAIL_ADDRESS_1], phone [PHONE_NUMBER_1].",
        "Mail [EMAIL_ADDRESS_1] and [EMAIL_ADDRESS_2], then [EMAIL_ADDRESS_1] again; or ring [PHONE_NUMBER_1].",
    ]
    # One placeholder per value, however it is written: it comes back as first written.
    assert completion.choices[0].message.content == answer(
        f"Mail {EMAIL} and {OTHER_EMAIL}, then {EMAIL} again; or ring {PHONE}."
    )


def test_text_content_parts_are_tokenised_and_restored(sdk: SDK, upstream: Upstream) -> None:
    content = [{"type": "text", "text": f"write to {EMAIL}"}, {"type": "text", "text": f"or call {PHONE}"}]
    completion = sdk.chat(model="gpt-test", messages=[{"role": "user", "content": content}])
    assert upstream.last()["body"]["messages"][0]["content"] == [
        {"type": "text", "text": "write to [EMAIL_ADDRESS_1]"},
        {"type": "text", "text": "or call [PHONE_NUMBER_1]"},
    ]
    # The fake quotes a list of parts as JSON: the values come back inside it.
    assert completion.choices[0].message.content == fake.reply_text({"messages": [{"content": content}]}, 0)


def test_a_resent_conversation_gets_the_same_placeholders(sdk: SDK, upstream: Upstream) -> None:
    first_turn = ask(PROMPT)
    first = sdk.chat(model="gpt-test", messages=first_turn).choices[0].message.content
    assert first == answer(PROMPT)
    second_turn = [
        *first_turn,
        {"role": "assistant", "content": first},
        {"role": "user", "content": f"Also copy {OTHER_EMAIL}, not {EMAIL}."},
    ]
    second = sdk.chat(model="gpt-test", messages=second_turn).choices[0].message.content
    one, two = upstream.received()
    sent = two["body"]["messages"]
    assert sent[:2] == one["body"]["messages"]
    # The upstream sees its own earlier answer exactly as it wrote it, placeholders and all.
    assert sent[2] == {"role": "assistant", "content": fake.reply_text(one["body"], 0)}
    assert sent[3]["content"] == "Also copy [EMAIL_ADDRESS_2], not [EMAIL_ADDRESS_1]."
    assert second == answer(f"Also copy {OTHER_EMAIL}, not {EMAIL}.")
    assert_absent(VALUES, json.dumps([one, two], ensure_ascii=False))


def test_a_placeholder_the_caller_typed_comes_back_as_typed(sdk: SDK, upstream: Upstream) -> None:
    text = f"My address is {EMAIL}; the form says [EMAIL_ADDRESS_1], [ email_address_2 ] and EMAIL_ADDRESS_3."
    completion = sdk.chat(model="gpt-test", messages=ask(text))
    assert sent_content(upstream.last()) == (
        "My address is [EMAIL_ADDRESS_4]; the form says [EMAIL_ADDRESS_1], [ email_address_2 ] and EMAIL_ADDRESS_3."
    )
    assert completion.choices[0].message.content == answer(text)


def test_a_placeholder_of_another_callers_value_is_never_restored(gateway: Gateway, upstream: Upstream) -> None:
    alice = SDK("sync", f"{gateway.url}/v1", gateway.create_key(VAULTED_PROJECT, "--name", "alice"))
    bob = SDK("sync", f"{gateway.url}/v1", gateway.create_key(VAULTED_PROJECT, "--name", "bob"))
    alice.chat(model="gpt-test", messages=ask(f"I am {ALICE}."))
    theirs = placeholder_of(sent_content(upstream.last()), "EMAIL_ADDRESS")
    # Bob names Alice's placeholder where Bastion does not read text (an image URL), so it is not reserved;
    # the model repeats it, next to Bob's own address.
    content = [
        {"type": "text", "text": f"I am {OTHER_EMAIL}."},
        {"type": "image_url", "image_url": {"url": f"https://img.example/{theirs}.png"}},
    ]
    reply = bob.chat(model="gpt-test", messages=[{"role": "user", "content": content}])
    text = reply.choices[0].message.content
    assert theirs in text
    assert OTHER_EMAIL in text
    assert ALICE not in text


# Streams ----------------------------------------------------------------------------------------------------------

SPLITS = [
    ("gpt-chars", None),
    ("gpt-chars", "chars"),
    ("gpt-chars", "random"),
    ("gpt-test", "chars"),
    ("gpt-test", "random"),
]
SPLIT_IDS = ["char-deltas", "char-deltas-byte-writes", "char-deltas-random-writes", "byte-writes", "random-writes"]


@pytest.mark.parametrize(("model", "split"), SPLITS, ids=SPLIT_IDS)
def test_a_split_stream_reaches_the_sdk_restored(sdk: SDK, faulty: Upstream, model: str, split: str | None) -> None:
    if split:
        faulty.set_fault(split=split)
    whole = sdk.chat(model=model, messages=ask(PROMPT)).choices[0].message.content
    chunks = sdk.stream(model=model, messages=ask(PROMPT), stream_options={"include_usage": True})
    whole_record, stream_record = faulty.received()
    assert stream_record["body"]["stream"] is True
    assert sent_content(stream_record) == sent_content(whole_record) == TOKENISED
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(pieces) == whole == answer(PROMPT)
    assert not [piece for piece in pieces if "[" in piece or "_" in piece]  # no fragment of a placeholder
    if model == "gpt-chars":
        assert len(pieces) > len(PROMPT)  # still streamed, not gathered into one chunk
    assert chunks[-1].choices == []
    assert {name: getattr(chunks[-1].usage, name) for name in fake.USAGE} == fake.USAGE


def test_every_choice_of_a_stream_is_restored(sdk: SDK, upstream: Upstream) -> None:
    chunks = sdk.stream(model="gpt-chars", messages=ask(PROMPT), n=2)
    for index in range(2):
        text = "".join(choice.delta.content or "" for c in chunks for choice in c.choices if choice.index == index)
        assert text == answer(PROMPT, index)
    assert sent_content(upstream.last()) == TOKENISED


def events_of(raw: bytes) -> list[bytes]:
    """The events of an SSE body, each checked to be one ``data:`` line and a blank line."""
    assert raw.endswith(b"\n\n")
    events = raw[:-2].split(b"\n\n")
    for event in events:
        assert event.startswith(b"data: ")
        assert b"\n" not in event
    return [event.removeprefix(b"data: ") for event in events]


@pytest.mark.parametrize("split", [None, "chars", "random"])
def test_the_restored_stream_is_valid_sse(
    http: httpx.Client, auth: dict[str, str], faulty: Upstream, split: str
) -> None:
    if split:
        faulty.set_fault(split=split)
    body = {"model": "gpt-chars", "messages": ask(PROMPT), "stream": True, "stream_options": {"include_usage": True}}
    response = http.post(CHAT, json=body, headers=auth)
    assert response.status_code == 200
    assert sent_content(faulty.last()) == TOKENISED
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-bastion-data-class"] == "regulated"
    *datas, done = events_of(response.content)
    assert done == b"[DONE]"
    chunks = [json.loads(data) for data in datas]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == answer(PROMPT)
    assert [c for c in chunks if c.get("usage")] == [chunks[-1]]
    assert not PLACEHOLDER.search(response.text)


# Refusals ---------------------------------------------------------------------------------------------------------


def blocked(http: httpx.Client, auth: dict[str, str], path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(path, json=body, headers=auth)
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert (error["code"], error["type"]) == ("sensitive_data_blocked", "invalid_request_error")
    assert_absent(VALUES, response.text)
    return error


@pytest.mark.parametrize(
    ("messages", "named"),
    [
        ([{"role": "user", "content": f"Charge {CARD} please."}], ["CREDIT_CARD in messages[0].content"]),
        ([{"role": "user", "content": f"Card 4111-1111-1111-1111, mail {EMAIL}"}], ["messages[0].content"]),
        (ask(f"my key is {AWS_KEY}"), ["SECRET in messages[1].content"]),
        (
            [
                {"role": "system", "content": f"Use {AWS_KEY}."},
                {"role": "user", "content": [{"type": "text", "text": f"pay with {CARD}"}]},
            ],
            ["CREDIT_CARD in messages[1].content[0].text", "SECRET in messages[0].content"],
        ),
    ],
    ids=["card", "card-with-dashes", "aws-key", "both-in-two-places"],
)
@pytest.mark.parametrize("stream", [False, True])
def test_a_blocked_type_is_refused_and_nothing_reaches_the_upstream(
    http: httpx.Client,
    auth: dict[str, str],
    upstream: Upstream,
    messages: list[dict[str, Any]],
    named: list[str],
    stream: bool,
) -> None:
    error = blocked(http, auth, CHAT, {"model": "gpt-test", "messages": messages, "stream": stream})
    for place in named:
        assert place in error["message"]
    assert upstream.received() == []


def test_the_sdk_sees_the_refusal_as_a_bad_request(sdk: SDK, upstream: Upstream) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat(model="gpt-test", messages=[{"role": "user", "content": f"Charge {CARD} please."}])
    assert refused.value.code == "sensitive_data_blocked"
    assert "CREDIT_CARD" in str(refused.value.message)
    assert CARD not in str(refused.value)
    assert upstream.received() == []


def test_embeddings_with_a_card_are_refused(http: httpx.Client, auth: dict[str, str], upstream: Upstream) -> None:
    error = blocked(http, auth, "/v1/embeddings", {"model": "text-embedding-test", "input": ["fine", f"card {CARD}"]})
    assert "CREDIT_CARD in input[1]" in error["message"]
    assert upstream.received() == []


# Data class -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("project", "header", "text", "expected"),
    [
        (PROJECT, None, "plain question", "internal"),  # the project's default class
        (PROJECT, "regulated", "plain question", "regulated"),
        (PROJECT, "confidential; phi", "plain question", "confidential"),
        (PROJECT, "public", "plain question", "internal"),  # not below the project's default
        (PROJECT, "public", f"mail {EMAIL}", "confidential"),  # not below what the findings imply
        (PROJECT, "PUBLIC", f"refund to {IBAN}", "regulated"),
        (REGULATED_PROJECT, "public", "plain question", "regulated"),
    ],
)
def test_the_data_class_is_the_highest_of_project_findings_and_header(
    gateway: Gateway, upstream: Upstream, project: str, header: str | None, text: str, expected: str
) -> None:
    client = SDK("sync", f"{gateway.url}/v1", gateway.create_key(project))
    extra = {"X-Bastion-Data-Class": header} if header else {}
    headers, _, completion = client.raw_chat(model="gpt-test", messages=ask(text), extra_headers=extra)
    assert headers["x-bastion-data-class"] == expected
    assert completion.choices[0].message.content == answer(text)


@pytest.mark.parametrize("header", ["secret", "regulated; gdpr", "confidential, pii", "internal; pci-dss"])
def test_a_bad_data_class_header_is_refused(
    http: httpx.Client, auth: dict[str, str], upstream: Upstream, header: str
) -> None:
    headers = {**auth, "X-Bastion-Data-Class": header}
    response = http.post(CHAT, json={"model": "gpt-test", "messages": ask("hello")}, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_parameter", "X-Bastion-Data-Class")
    assert upstream.received() == []


# Policies of other projects ---------------------------------------------------------------------------------------


def test_a_redacted_type_never_comes_back(gateway: Gateway, upstream: Upstream) -> None:
    client = SDK("sync", f"{gateway.url}/v1", gateway.create_key(REDACTING_PROJECT))
    completion = client.chat(model="gpt-test", messages=ask(PROMPT))
    assert sent_content(upstream.last()) == TOKENISED.replace("[EMAIL_ADDRESS_1]", "[REDACTED_EMAIL_ADDRESS]")
    assert completion.choices[0].message.content == answer(PROMPT.replace(EMAIL, "[REDACTED_EMAIL_ADDRESS]"))


@pytest.mark.parametrize("project", PROJECTS)
def test_a_persisted_vault_keeps_placeholders_across_requests(
    gateway: Gateway, upstream: Upstream, project: str
) -> None:
    address = f"persist.{project}@example.com"
    newcomer = f"newcomer.{project}@example.com"
    first = SDK("sync", f"{gateway.url}/v1", gateway.create_key(project, "--name", "first"))
    second = SDK("sync", f"{gateway.url}/v1", gateway.create_key(project, "--name", "second"))
    first.chat(model="gpt-test", messages=ask(f"I am {address}."))
    before = placeholder_of(sent_content(upstream.last()), "EMAIL_ADDRESS")
    # Another caller, another request, the new address first: a fresh vault would number it 1 and ours 2.
    reply = second.chat(model="gpt-test", messages=ask(f"Forward from {newcomer} to {address}."))
    sent = sent_content(upstream.last())
    assert_absent([address, newcomer], json.dumps(upstream.received()))
    assert reply.choices[0].message.content == answer(f"Forward from {newcomer} to {address}.")
    if project == VAULTED_PROJECT:
        assert sent == f"Forward from [EMAIL_ADDRESS_{number(before) + 1}] to {before}."
    else:
        assert (before, sent) == ("[EMAIL_ADDRESS_1]", "Forward from [EMAIL_ADDRESS_1] to [EMAIL_ADDRESS_2].")


# Embeddings -------------------------------------------------------------------------------------------------------


def test_embeddings_input_is_tokenised(sdk: SDK, upstream: Upstream) -> None:
    inputs = [f"contact {EMAIL}", "nothing here", f"{PHONE} and {EMAIL}"]
    result = sdk.embed(model="text-embedding-test", input=inputs, encoding_format="float")
    (record,) = upstream.received()
    received = record["body"]["input"]
    assert received == ["contact [EMAIL_ADDRESS_1]", "nothing here", "[PHONE_NUMBER_1] and [EMAIL_ADDRESS_1]"]
    # The vectors are of what the upstream was sent (the fake's first component is the text's length).
    assert [item.embedding for item in result.data] == [fake.vector(text, i) for i, text in enumerate(received)]


def test_a_single_embeddings_string_is_tokenised(sdk: SDK, upstream: Upstream) -> None:
    sdk.embed(model="text-embedding-test", input=f"call {PHONE}")
    assert upstream.last()["body"]["input"] == "call [PHONE_NUMBER_1]"


# The audit log and the store --------------------------------------------------------------------------------------


def entry(entries: list[dict[str, Any]], request_id: str, action: str) -> dict[str, Any]:
    (found,) = [e for e in entries if e.get("request_id") == request_id and e["action"] == action]
    return found


def test_the_audit_log_counts_findings_and_never_holds_values(
    http: httpx.Client, auth: dict[str, str], gateway: Gateway, upstream: Upstream
) -> None:
    messages = ask(f"{PROMPT} Again: {EMAIL}.")
    forwarded = http.post(CHAT, json={"model": "gpt-test", "messages": messages}, headers=auth)
    refused = http.post(CHAT, json={"model": "gpt-test", "messages": ask(f"{EMAIL} pays with {CARD}")}, headers=auth)
    assert (forwarded.status_code, refused.status_code) == (200, 400)
    export = gateway.cli("audit", "export", "--format", "jsonl").stdout
    entries = [json.loads(line) for line in export.splitlines() if line]
    sent = entry(entries, forwarded.headers["x-bastion-request-id"], "request.forwarded")
    assert sent["data"] == {
        "class": "regulated",
        "tags": ["pci", "pii"],
        "findings": {"EMAIL_ADDRESS": 2, "IBAN_CODE": 1, "PHONE_NUMBER": 1},
        "actions": {"EMAIL_ADDRESS": "tokenize", "IBAN_CODE": "tokenize", "PHONE_NUMBER": "tokenize"},
    }
    no = entry(entries, refused.headers["x-bastion-request-id"], "request.refused")
    assert (no["reason"], no["data"]["findings"]) == ("sensitive_data_blocked", {"CREDIT_CARD": 1, "EMAIL_ADDRESS": 1})
    assert no["data"]["actions"] == {"CREDIT_CARD": "block", "EMAIL_ADDRESS": "tokenize"}
    assert_absent(VALUES, export)


def test_no_value_is_stored_or_logged_in_clear(gateway: Gateway, upstream: Upstream) -> None:
    """Run last in this module: by then every test above has sent its values, persisted vaults included."""
    vaulted = SDK("sync", f"{gateway.url}/v1", gateway.create_key(VAULTED_PROJECT, "--name", "store-check"))
    vaulted.chat(model="gpt-test", messages=ask(PROMPT))
    vaulted.stream(model="gpt-chars", messages=ask(PROMPT))
    with pytest.raises(openai.BadRequestError):
        vaulted.chat(model="gpt-test", messages=ask(f"{PROMPT} {CARD} {AWS_KEY}"))
    files = [path for path in gateway.database.parent.glob("bastion.db*") if path.is_file()]
    assert gateway.database in files
    stored = b"".join(path.read_bytes() for path in files)
    values = [
        *VALUES,
        ALICE,
        *(f"{who}.{project}@example.com" for who in ("persist", "newcomer") for project in PROJECTS),
    ]
    for value in values:
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            assert value.encode(encoding) not in stored, (value, encoding)
    assert_absent(values, gateway.server.output())
