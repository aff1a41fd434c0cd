from __future__ import annotations

import itertools
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.protect.detect.finding import Finding
from bastion.protect.output import OutputMasker, StreamMasker, json_view

PATTERNS = (
    ("EMAIL_ADDRESS", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    ("CREDIT_CARD", re.compile(r"(?<![\d-])\d{4}(?:[ -]?\d{4}){3}(?![\d-])")),
    ("SECRET", re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9]{20,}")),
    ("SECRET", re.compile(r"-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----")),
)
ROUTING = re.compile(r"(?<!\d)\d{9}(?!\d)")


def detect(text: str) -> list[Finding]:
    """A local stand-in detector: emails, cards, keys, PEM blocks, and nine digits near the word "routing"
    (up to 48 characters before or 24 after, as the real detector reads context)."""
    found = [Finding(type_, m.start(), m.end(), 1.0, "fake") for type_, p in PATTERNS for m in p.finditer(text)]
    for m in ROUTING.finditer(text):
        if "routing" in text[max(0, m.start() - 48) : m.end() + 24]:
            found.append(Finding("US_BANK_ROUTING", m.start(), m.end(), 0.8, "fake"))
    return found


SUPPLIED = ("alice@x.com", "4111 1111 1111 1111")
MASKER = OutputMasker(detect, supplied=SUPPLIED)


@pytest.mark.parametrize(
    ("answer", "masked"),
    [
        ("write to bob@evil.com now", "write to [REDACTED_EMAIL_ADDRESS] now"),
        ("write to alice@x.com now", "write to alice@x.com now"),
        ("write to ALICE@X.COM now", "write to ALICE@X.COM now"),  # supplied, compared by the email rule
        ("card 4111-1111-1111-1111.", "card 4111-1111-1111-1111."),  # supplied, compared by its digits
        ("card 5500 0000 0000 0004.", "card [REDACTED_CREDIT_CARD]."),
        ("key sk-abcdefghijklmnopqrstuvwx", "key [REDACTED_SECRET]"),
        ("021000021 is the routing number", "[REDACTED_US_BANK_ROUTING] is the routing number"),
        ("021000021 is the order number", "021000021 is the order number"),
        ("nothing here", "nothing here"),
        ("", ""),
    ],
)
def test_mask(answer: str, masked: str) -> None:
    assert MASKER.mask(answer) == masked


def test_the_policy_may_allow_a_type() -> None:
    masker = OutputMasker(detect, policy={"EMAIL_ADDRESS": "allow"})
    assert masker.mask("bob@evil.com sk-abcdefghijklmnopqrstuvwx") == "bob@evil.com [REDACTED_SECRET]"
    allow_all = OutputMasker(detect, policy={"SECRET": "redact"}, default="allow")
    assert allow_all.mask("bob@evil.com sk-abcdefghijklmnopqrstuvwx") == "bob@evil.com [REDACTED_SECRET]"


def test_a_policy_with_an_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="EMAIL_ADDRESS must be 'redact' or 'allow'"):
        OutputMasker(detect, policy={"EMAIL_ADDRESS": "tokenize"})  # type: ignore[dict-item]


def test_overlapping_findings_mask_once() -> None:
    def overlapping(text: str) -> list[Finding]:
        return [Finding("PERSON", 0, 5, 1, "x"), Finding("PERSON", 3, 9, 1, "x"), Finding("PERSON", 0, 9, 1, "x")]

    assert OutputMasker(overlapping).mask("Bob Jones!") == "[REDACTED_PERSON]!"


def test_json_view_blanks_escapes_and_quotes_and_keeps_length() -> None:
    source = '{"a": "x\\nalice@x.com \\"q\\" \\u00e9"}'
    view = json_view(source)
    assert len(view) == len(source)
    assert view == "{ a :  x  alice@x.com   q" + " " * 10 + "}"


def test_tool_arguments_keep_supplied_values_and_stay_valid_json() -> None:
    arguments = json.dumps({"body": "Hi,\nalice@x.com wrote:\nbob@evil.com", "to": "alice@x.com"})
    masked = MASKER.mask(arguments, json_string=True)
    assert json.loads(masked) == {"body": "Hi,\nalice@x.com wrote:\n[REDACTED_EMAIL_ADDRESS]", "to": "alice@x.com"}


def stream(text: str, sizes: list[int], masker: OutputMasker = MASKER, **options: int) -> list[str]:
    """What a StreamMasker emits for ``text`` cut into deltas of ``sizes`` (cycled), then the flush."""
    streaming = masker.stream(**options)  # type: ignore[arg-type]
    out, position = [], 0
    for size in itertools.cycle(sizes or [len(text) or 1]):
        if position >= len(text):
            break
        out.append(streaming.feed(text[position : position + size]))
        position += size
    return [*out, streaming.flush()]


PLANTED = ("qz1@leak.test", "6011 0009 9013 9424", "sk-LEAKabcdefghijklmnopqrst", "Zq.x@leak.example")
WORDS = ["hello", "the", "Total:", "x,", "(", ")", "routing", "number", "42", "2024", "021000021", "é", "[PERSON_1]"]
SEPARATORS = [" ", " ", " ", "  ", "\n", ", ", ". ", "-", "\t", ""]
ANSWERS = st.lists(
    st.tuples(st.sampled_from([*WORDS, *PLANTED, *SUPPLIED, "4111-1111-1111-1111"]), st.sampled_from(SEPARATORS)),
    max_size=40,
).map(lambda pairs: "".join(word + sep for word, sep in pairs))


def assert_never_ahead(text: str, chunks: list[str], masker: OutputMasker = MASKER) -> None:
    """The stream equals the one-shot mask, every prefix it emits is a prefix of it, and no masked value's
    first four characters ever leave (a planted value that the mask hides everywhere)."""
    whole = masker.mask(text)
    hidden = [value for value in PLANTED if value in text and value[:4] not in whole]
    emitted = ""
    for chunk in chunks:
        emitted += chunk
        assert whole.startswith(emitted)
        assert not [value for value in hidden if value[:4] in emitted]
    assert emitted == whole


@settings(max_examples=300, deadline=None)
@given(ANSWERS, st.lists(st.integers(min_value=1, max_value=40), max_size=12))
def test_any_split_masks_like_the_whole_and_never_lets_a_fragment_out(text: str, sizes: list[int]) -> None:
    assert_never_ahead(text, stream(text, sizes))


@settings(deadline=None)
@given(ANSWERS)
def test_one_character_per_event_masks_like_the_whole(text: str) -> None:
    assert_never_ahead(text, stream(text, [1]))


@settings(deadline=None)
@given(ANSWERS, st.lists(st.integers(min_value=1, max_value=40), max_size=12))
def test_json_arguments_stream_like_the_whole(text: str, sizes: list[int]) -> None:
    arguments = json.dumps({"note": text, "to": ["alice@x.com", text[:20]]})
    whole = MASKER.mask(arguments, json_string=True)
    streamed = "".join(stream(arguments, sizes, json_string=True))
    assert streamed == whole
    assert json.loads(streamed)["to"][0] == "alice@x.com"


def test_context_after_a_value_is_waited_for() -> None:
    text = "the code 021000021 is our routing number, as said"
    assert MASKER.mask(text) == "the code [REDACTED_US_BANK_ROUTING] is our routing number, as said"
    chunks = stream(text, [1])
    assert_never_ahead(text, chunks)
    leaky = "".join(stream(text, [1], after=0))
    assert "021000021" in leaky  # without the wait it goes out before "routing" arrives: the wait is needed


def test_a_token_is_never_cut_while_context_for_it_may_still_come() -> None:
    text = "see ref-021000021 and then the routing"
    assert MASKER.mask(text) == "see ref-[REDACTED_US_BANK_ROUTING] and then the routing"
    assert_never_ahead(text, stream(text, [1]))


def test_plain_text_goes_out_once_the_context_margin_has_passed() -> None:
    masker = MASKER.stream()
    assert masker.feed("Hello there, this is a plain sentence") == "Hello there, "
    assert masker.held == len("this is a plain sentence")


def test_a_card_in_groups_is_held_while_a_group_may_follow() -> None:
    masker = MASKER.stream(after=0)
    assert masker.feed("pay 5500 0000 0000") == ""  # "pay" too: "pay 5500" may be one value (a NINO is)
    assert masker.feed(" ") == ""
    assert masker.feed("0004") == ""
    assert masker.feed(" thanks, bye now") == "pay [REDACTED_CREDIT_CARD] thanks, "
    assert masker.flush() == "bye now"


def test_a_word_is_released_once_no_digit_group_can_join_it() -> None:
    masker = MASKER.stream(after=0)
    assert masker.feed("Hello there") == ""  # "there" may still become "there1", joining "Hello"
    assert masker.feed(" my") == "Hello "
    assert masker.feed(" friend  ") == "there my friend  "


def test_an_unclosed_pem_block_is_held_until_it_ends() -> None:
    pem = (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----"
    )
    masker = MASKER.stream(after=0)
    assert masker.feed("key:\n" + pem[:-40] + "\n\n") == "key:\n"
    assert masker.feed(pem[-40:] + "\n\nbye  ") == "[REDACTED_SECRET]\n\nbye  "


def test_the_hold_back_is_capped() -> None:
    masker = MASKER.stream(hold=32, after=8)
    emitted = masker.feed("x" * 100)
    assert emitted == "x" * 68
    assert masker.held == 32
    assert masker.feed("y" * 10) == "x" * 10
    assert masker.flush() == "x" * 22 + "y" * 10


def test_a_value_across_a_forced_cut_is_masked_whole() -> None:
    masker = MASKER.stream(hold=8, after=0)
    out = masker.feed("abcdefghij,qz1@leak.test")
    assert out == "abcdefghij,[REDACTED_EMAIL_ADDRESS]"


def test_the_masker_starts_over_after_a_flush() -> None:
    masker = MASKER.stream()
    assert masker.feed("bob@evil.com") + masker.flush() == "[REDACTED_EMAIL_ADDRESS]"
    assert masker.feed("a") + masker.flush() == "a"


@pytest.mark.parametrize(("hold", "before", "after"), [(-1, 0, 0), (10, -1, 0), (8, 0, 9)])
def test_stream_bounds_are_checked(hold: int, before: int, after: int) -> None:
    with pytest.raises(ValueError, match="hold"):
        StreamMasker(MASKER, hold=hold, before=before, after=after)
