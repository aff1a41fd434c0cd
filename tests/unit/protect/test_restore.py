from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.protect.detect.finding import Finding
from bastion.protect.restore import StreamRestorer, restore, restore_json_string
from bastion.protect.tokenize import Vault, tokenize


def make_vault(**values: str) -> Vault:
    """``make_vault(PERSON="Bob", EMAIL_ADDRESS="b@y.co")``: one placeholder per type, numbered 1."""
    vault = Vault()
    for type_, value in values.items():
        vault.placeholder(type_, value)
    return vault


VAULT = make_vault(PERSON="Bob Jones", EMAIL_ADDRESS="bob@y.com", CREDIT_CARD="4111 1111 1111 1111")


@pytest.mark.parametrize(
    ("answer", "restored"),
    [
        ("Hi [PERSON_1]!", "Hi Bob Jones!"),
        ("Hi [person_1]!", "Hi Bob Jones!"),
        ("Hi [Person_1]!", "Hi Bob Jones!"),
        ("Hi [ PERSON_1 ]!", "Hi Bob Jones!"),
        ("Hi [  PERSON_1\t]!", "Hi Bob Jones!"),
        ("Hi PERSON_1!", "Hi Bob Jones!"),
        ("PERSON_1", "Bob Jones"),
        ("(EMAIL_ADDRESS_1)", "(bob@y.com)"),
        ("[PERSON_1][EMAIL_ADDRESS_1]", "Bob Jones" + "bob@y.com"),
        ("[[PERSON_1]]", "[Bob Jones]"),
        ("card CREDIT_CARD_1.", "card 4111 1111 1111 1111."),
        ("Hi [PERSON_1", "Hi [Bob Jones"),  # a broken bracket still leaves a whole word
        ("Hi [   PERSON_1]", "Hi [   Bob Jones]"),
        # left as they are
        ("Hi [PERSON_9]", "Hi [PERSON_9]"),
        ("Hi person_1", "Hi person_1"),
        ("Hi Person_1", "Hi Person_1"),
        (
            "Hi XPERSON_1 PERSON_1X PERSON_10 PERSON_1_2 _PERSON_1",
            "Hi XPERSON_1 PERSON_1X PERSON_10 PERSON_1_2 _PERSON_1",
        ),
        ("Hi [PERSON_1_2]", "Hi [PERSON_1_2]"),
        ("Hi [PERSON 1]", "Hi [PERSON 1]"),
        ("Hi [REDACTED_PERSON]", "Hi [REDACTED_PERSON]"),
    ],
)
def test_restore(answer: str, restored: str) -> None:
    assert restore(answer, VAULT) == restored


def test_a_restored_value_is_not_restored_again() -> None:
    vault = make_vault(PERSON="[EMAIL_ADDRESS_1]", EMAIL_ADDRESS="x@y.co")
    assert restore("[PERSON_1]", vault) == "[EMAIL_ADDRESS_1]"


def test_an_empty_vault_restores_nothing() -> None:
    assert restore("Hi [PERSON_1]", Vault()) == "Hi [PERSON_1]"
    restorer = StreamRestorer(Vault())
    assert [restorer.feed("[PERS"), restorer.feed("ON_1]"), restorer.flush()] == ["[PERS", "ON_1]", ""]
    assert restorer.bound == 0


@pytest.mark.parametrize("value", ['O"Brien', "back\\slash", "two\nlines", "tab\there", "Zoë 名前", "\u2028"])
def test_restoring_inside_a_json_string_keeps_it_valid(value: str) -> None:
    vault = make_vault(PERSON=value)
    arguments = '{"to": "[PERSON_1]", "note": "dear PERSON_1,\\n", "list": ["[person_1]"]}'
    restored = restore_json_string(arguments, vault)
    assert json.loads(restored) == {"to": value, "note": f"dear {value},\n", "list": [value]}


def paraphrase(sent: str) -> str:
    """A model that mangles placeholders the way models do: case, spaces, brackets."""
    return (
        f"Dear {sent.split()[0].lower()}, "
        + sent.replace("[EMAIL_ADDRESS_1]", "[ EMAIL_ADDRESS_1 ]").replace("[PERSON_2]", "PERSON_2")
        + " [PERSON_7]"
    )


def test_round_trip_through_a_model_that_paraphrases() -> None:
    text = "Alice Smith asked Bob Jones to mail bob@y.com"
    findings = [
        Finding("PERSON", 0, 11, 1.0, "ner"),
        Finding("PERSON", 18, 27, 1.0, "ner"),
        Finding("EMAIL_ADDRESS", 36, 45, 1.0, "email"),
    ]
    vault = Vault()
    sent = tokenize(text, findings, vault)
    assert sent == "[PERSON_1] asked [PERSON_2] to mail [EMAIL_ADDRESS_1]"
    assert restore(paraphrase(sent), vault) == f"Dear Alice Smith, {text} [PERSON_7]"


def pieces(text: str, cuts: list[int]) -> list[str]:
    edges = [0, *sorted({min(cut, len(text)) for cut in cuts}), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(edges)]


def streamed(vault: Vault, deltas: list[str], *, json_string: bool = False) -> str:
    restorer = StreamRestorer(vault, json_string=json_string)
    out = []
    for delta in deltas:
        out.append(restorer.feed(delta))
        assert restorer.held <= restorer.bound
    return "".join(out) + restorer.flush()


FRAGMENTS = st.sampled_from(
    ["[", "]", " ", "  ", "\t", "_", "1", "2", "PERSON", "person", "EMAIL_ADDRESS", "CREDIT_CARD", "X", "x", "é", "\n"]
)
WHOLE = st.sampled_from(
    ["[PERSON_1]", "[ person_1 ]", "PERSON_1", "[EMAIL_ADDRESS_1]", "[PERSON_12]", "[CREDIT_CARD_1"]
)
TEXTS = st.lists(st.one_of(FRAGMENTS, WHOLE), max_size=40).map("".join)


@settings(max_examples=300)
@given(TEXTS, st.lists(st.integers(min_value=0, max_value=400), max_size=30))
def test_any_split_restores_like_the_whole(text: str, cuts: list[int]) -> None:
    assert streamed(VAULT, pieces(text, cuts)) == restore(text, VAULT)


@given(TEXTS)
def test_one_character_at_a_time_restores_like_the_whole(text: str) -> None:
    assert streamed(VAULT, list(text)) == restore(text, VAULT)


@given(TEXTS, st.lists(st.integers(min_value=0, max_value=400), max_size=30))
def test_any_split_restores_json_strings_like_the_whole(text: str, cuts: list[int]) -> None:
    vault = make_vault(PERSON='Bob "B" Jones', EMAIL_ADDRESS="b\\@y.com")
    assert streamed(vault, pieces(text, cuts), json_string=True) == restore_json_string(text, vault)


def test_names_that_are_prefixes_of_each_other() -> None:
    vault = Vault()
    for n in range(12):
        vault.placeholder("PERSON", f"person {n}")
    text = "[PERSON_1] [PERSON_12] PERSON_1 PERSON_11. [person_10]"
    expected = "person 0 person 11 person 0 person 10. person 9"
    assert restore(text, vault) == expected
    assert streamed(vault, list(text)) == expected


def test_a_placeholder_split_over_many_deltas_comes_out_whole() -> None:
    restorer = StreamRestorer(VAULT)
    out = [restorer.feed(delta) for delta in ["Hi [", "PER", "SON", "_", "1", "]", ", ok"]]
    assert out == ["Hi ", "", "", "", "", "Bob Jones", ", ok"]


def test_text_that_cannot_become_a_placeholder_is_released_at_once() -> None:
    restorer = StreamRestorer(VAULT)
    assert restorer.feed("Hello, world. ") == "Hello, world. "
    assert restorer.feed("[PERSON_9") == "[PERSON_9"  # no name in the vault starts like this
    assert restorer.feed("PERSON_") == "PERSON_"  # glued to the 9: not a word of its own
    assert restorer.feed(" PERSON_") == " "  # a word of its own: may still become PERSON_1
    assert restorer.flush() == "PERSON_"


def test_a_bare_name_waits_for_the_character_after_it() -> None:
    restorer = StreamRestorer(VAULT)
    assert restorer.feed("to PERSON_1") == "to "
    assert restorer.feed("0") == "PERSON_10"
    assert restorer.feed(" and PERSON_1") == " and "
    assert restorer.feed(".") == "Bob Jones."
