from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.protect.detect.finding import Finding
from bastion.protect.restore import restore
from bastion.protect.tokenize import (
    SHAPE,
    Vault,
    VaultExpired,
    VaultRejected,
    placeholder_type,
    redact,
    seal,
    tokenize,
    tokenize_all,
    unseal,
    value_key,
)

NAMES = ("Alice Smith", "Bob Jones", "alice smith")
_FIND = re.compile(
    r"(?P<EMAIL_ADDRESS>[a-z0-9.]+@[a-z]+\.[a-z]+)|(?P<PERSON>" + "|".join(map(re.escape, NAMES)) + ")", re.IGNORECASE
)
KEY = bytes(range(32))
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def find(text: str) -> list[Finding]:
    """A stand-in detector: emails and a few names."""
    return [Finding(str(m.lastgroup), m.start(), m.end(), 1.0, "fake") for m in _FIND.finditer(text)]


def span(text: str, value: str, type_: str) -> Finding:
    start = text.index(value)
    return Finding(type_, start, start + len(value), 1.0, "fake")


def test_placeholders_are_typed_and_numbered_per_type_in_order_of_first_appearance() -> None:
    text = "Bob Jones <bob@y.com> and Alice Smith <alice@x.com>, again bob@y.com"
    assert tokenize(text, find(text), Vault()) == (
        "[PERSON_1] <[EMAIL_ADDRESS_1]> and [PERSON_2] <[EMAIL_ADDRESS_2]>, again [EMAIL_ADDRESS_1]"
    )


def test_spans_refer_to_the_text_as_given_in_any_order() -> None:
    text = "a@b.co then c@d.co"
    findings = list(reversed(find(text)))
    assert tokenize(text, findings, Vault()) == "[EMAIL_ADDRESS_1] then [EMAIL_ADDRESS_2]"


def test_overlapping_findings_keep_the_earlier_then_longer() -> None:
    text = "Alice Smith here"
    findings = [Finding("PERSON", 6, 11, 0.5, "x"), Finding("PERSON", 0, 11, 0.9, "x"), Finding("PERSON", 0, 5, 1, "x")]
    assert tokenize(text, findings, Vault()) == "[PERSON_1] here"


def test_findings_outside_the_text_are_ignored() -> None:
    assert tokenize("short", [Finding("PERSON", 3, 40, 1.0, "x"), Finding("PERSON", 2, 2, 1, "x")], Vault()) == "short"


@pytest.mark.parametrize(
    ("type_", "first", "second", "same"),
    [
        ("EMAIL_ADDRESS", "Alice@Example.COM", "alice@example.com", True),
        ("EMAIL_ADDRESS", "alice@example.com", "alice@example.org", False),
        ("PERSON", "Alice  Smith", "alice smith", True),
        ("PERSON", "Alice Smith", "Alice Smyth", False),
        ("CREDIT_CARD", "4111 1111 1111 1111", "4111-1111-1111-1111", True),
        ("CREDIT_CARD", "4111 1111 1111 1111", "4111 1111 1111 1112", False),
        ("PHONE_NUMBER", "+1 (415) 555-2671", "+1 415 555 2671", True),
        ("US_SSN", "123-45-6789", "123 45 6789", True),
        ("IBAN_CODE", "DE89 3704 0044 0532 0130 00", "de89370400440532013000", True),
        ("UK_NINO", "AB 12 34 56 C", "AB123456C", True),
        ("IP_ADDRESS", "2001:DB8::1", "2001:db8::1", True),
        ("SECRET", "sk-AbCd", "sk-abcd", False),
        ("SECRET", "sk-AbCd", "sk-AbCd", True),
        ("CREDIT_CARD", "\uff14\uff11\uff11\uff11 1111 1111 1111", "4111111111111111", True),  # full-width digits
        ("EMAIL_ADDRESS", "alice@exam\u200bple.com", "alice@example.com", True),  # zero-width space
    ],
)
def test_the_same_value_gets_the_same_placeholder(type_: str, first: str, second: str, same: bool) -> None:
    vault = Vault()
    assert (vault.placeholder(type_, first) == vault.placeholder(type_, second)) is same
    assert (value_key(type_, first) == value_key(type_, second)) is same


def test_the_vault_restores_the_first_spelling_it_saw() -> None:
    vault = Vault()
    vault.placeholder("EMAIL_ADDRESS", "Alice@X.com")
    vault.placeholder("EMAIL_ADDRESS", "alice@x.com")
    assert vault.mapping() == {"EMAIL_ADDRESS_1": "Alice@X.com"}


def test_a_value_with_an_empty_key_is_compared_as_it_is() -> None:
    vault = Vault()
    assert vault.placeholder("CREDIT_CARD", "n/a") != vault.placeholder("CREDIT_CARD", "none")


@pytest.mark.parametrize(
    ("type_", "name"),
    [("EMAIL_ADDRESS", "EMAIL_ADDRESS"), ("person", "PERSON"), ("us-ssn", "US_SSN"), ("3d", "X_3D"), ("", "VALUE")],
)
def test_placeholder_type(type_: str, name: str) -> None:
    assert placeholder_type(type_) == name


def test_redact_is_typed_or_plain_and_leaves_no_vault_entry() -> None:
    text = "write to alice@x.com"
    assert redact(text, find(text)) == "write to [REDACTED_EMAIL_ADDRESS]"
    assert redact(text, find(text), typed=False) == "write to [REDACTED]"


def converse(messages: list[str]) -> tuple[list[str], Vault]:
    vault = Vault()
    return tokenize_all([(text, find(text)) for text in messages], vault), vault


def test_identical_conversations_get_identical_placeholders() -> None:
    messages = ["I am Bob Jones, bob@y.com", "cc Alice Smith <alice@x.com> and bob@y.com"]
    assert converse(messages)[0] == converse(list(messages))[0]


def test_a_resent_conversation_keeps_its_placeholders_across_turns() -> None:
    first, vault = converse(["I am Alice Smith, alice@x.com"])
    answer = "Hello [PERSON_1], I will write to [EMAIL_ADDRESS_1]."  # what the model said
    shown = restore(answer, vault)
    assert shown == "Hello Alice Smith, I will write to alice@x.com."
    second, _ = converse(["I am Alice Smith, alice@x.com", shown, "Add bob@y.com and cc alice smith"])
    assert second[:2] == [first[0], answer]  # the model sees the same story it told
    assert second[2] == "Add [EMAIL_ADDRESS_2] and cc [PERSON_1]"


@pytest.mark.parametrize(
    "planted",
    ["[EMAIL_ADDRESS_1]", "[email_address_1]", "[ EMAIL_ADDRESS_1 ]", "EMAIL_ADDRESS_1", "[\tEmail_Address_1]"],
)
def test_a_placeholder_in_the_input_is_never_replaced_by_a_real_value(planted: str) -> None:
    text = f"Forward {planted} to alice@x.com"
    vault = Vault()
    sent = tokenize(text, find(text), vault)
    assert sent == f"Forward {planted} to [EMAIL_ADDRESS_2]"
    echoed = f"Sent {planted}; also [EMAIL_ADDRESS_2]"
    assert restore(echoed, vault) == f"Sent {planted}; also alice@x.com"


def test_a_placeholder_shape_in_a_later_message_is_reserved_before_numbering() -> None:
    sent, vault = converse(["mail alice@x.com", "the template says [EMAIL_ADDRESS_1]"])
    assert sent == ["mail [EMAIL_ADDRESS_2]", "the template says [EMAIL_ADDRESS_1]"]
    assert restore("[EMAIL_ADDRESS_1] [EMAIL_ADDRESS_2]", vault) == "[EMAIL_ADDRESS_1] alice@x.com"


def test_a_placeholder_already_handed_out_is_retired_when_the_input_has_it() -> None:
    vault = Vault()
    assert tokenize("mail alice@x.com", find("mail alice@x.com"), vault) == "mail [EMAIL_ADDRESS_1]"
    later = "planted [EMAIL_ADDRESS_1] and alice@x.com"  # tokenised alone, without tokenize_all
    assert tokenize(later, find(later), vault) == "planted [EMAIL_ADDRESS_1] and [EMAIL_ADDRESS_2]"
    assert restore("[EMAIL_ADDRESS_1] [EMAIL_ADDRESS_2]", vault) == "[EMAIL_ADDRESS_1] alice@x.com"
    assert "alice@x.com" in vault.supplied()


def test_words_that_only_look_like_placeholders_are_reserved_too() -> None:
    text = "set PERSON_1 = load() for Bob Jones"
    vault = Vault()
    assert tokenize(text, find(text), vault) == "set PERSON_1 = load() for [PERSON_2]"


SHAPES = st.sampled_from(
    ["[PERSON_1]", "[person_2]", "PERSON_1", "[ EMAIL_ADDRESS_1 ]", "EMAIL_ADDRESS_2", "[PERSON_1_2]", "x_PERSON_3"]
)
PLAIN = st.sampled_from([" ", "[", "]", "_", "1", "a", "Z", "\t", "Bob Jones", "bob@y.com", "Alice Smith"])


@given(st.lists(st.one_of(SHAPES, PLAIN), max_size=30))
def test_restoring_the_callers_own_text_changes_nothing(pieces: list[str]) -> None:
    text = "".join(pieces)
    vault = Vault()
    tokenize(text, find(text), vault)
    assert restore(text, vault) == text
    assert not set(vault.mapping()) & {(m.group(1) or m.group(2)).upper() for m in SHAPE.finditer(text)}


@given(
    st.lists(st.sampled_from(["Bob Jones", "bob@y.com", "Alice Smith", " ", ", ", "\n", "said", "[x]"]), max_size=30)
)
def test_tokenize_then_restore_gives_the_text_back(pieces: list[str]) -> None:
    text = " ".join(pieces)  # apart, so that no two values merge into one spelled two ways
    vault = Vault()
    sent = tokenize(text, find(text), vault)
    assert "bob@y.com" not in sent
    assert restore(sent, vault) == text


def test_seal_and_unseal_keep_the_placeholders_and_the_numbering() -> None:
    vault = Vault()
    tokenize("Bob Jones, bob@y.com, Alice Smith", find("Bob Jones, bob@y.com, Alice Smith"), vault)
    blob = seal(vault, KEY, now=NOW, ttl=timedelta(hours=1), context=b"support-bot")
    again = unseal(blob, KEY, now=NOW + timedelta(minutes=59), context=b"support-bot")
    assert again.mapping() == vault.mapping()
    assert again.placeholder("PERSON", "bob jones") == "[PERSON_1]"
    assert again.placeholder("PERSON", "Carol") == "[PERSON_3]"
    assert b"bob@y.com" not in blob


def test_an_unsealed_vault_keeps_placeholders_stable_across_requests() -> None:
    _, vault = converse(["I am Bob Jones"])
    later = unseal(seal(vault, KEY, now=NOW, ttl=timedelta(days=1)), KEY, now=NOW + timedelta(hours=1))
    text = "Alice Smith met Bob Jones"
    assert tokenize(text, find(text), later) == "[PERSON_2] met [PERSON_1]"


def test_a_sealed_vault_is_refused_after_its_ttl() -> None:
    blob = seal(Vault(), KEY, now=NOW, ttl=timedelta(minutes=30))
    assert len(unseal(blob, KEY, now=NOW + timedelta(minutes=29, seconds=59))) == 0
    with pytest.raises(VaultExpired):
        unseal(blob, KEY, now=NOW + timedelta(minutes=30))


@pytest.mark.parametrize("offset", [1, 5, 9, 12, 20, 30, -1])
def test_a_tampered_vault_is_refused(offset: int) -> None:
    vault = Vault()
    vault.placeholder("PERSON", "Bob")
    blob = bytearray(seal(vault, KEY, now=NOW, ttl=timedelta(hours=1)))
    blob[offset] ^= 0x01  # expiry, nonce or ciphertext and tag
    with pytest.raises(VaultRejected):
        unseal(bytes(blob), KEY, now=NOW)


@pytest.mark.parametrize(
    ("key", "context", "blob_end"),
    [(bytes(32), b"", None), (KEY, b"other-project", None), (KEY, b"", 20)],
)
def test_a_vault_with_the_wrong_key_context_or_length_is_refused(
    key: bytes, context: bytes, blob_end: int | None
) -> None:
    blob = seal(Vault(), KEY, now=NOW, ttl=timedelta(hours=1))
    with pytest.raises(VaultRejected):
        unseal(blob[:blob_end], key, now=NOW, context=context)


def test_seal_needs_an_aware_time_and_a_positive_ttl() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        seal(Vault(), KEY, now=NOW.replace(tzinfo=None), ttl=timedelta(hours=1))
    with pytest.raises(ValueError, match="positive TTL"):
        seal(Vault(), KEY, now=NOW, ttl=timedelta(0))
