from __future__ import annotations

import dataclasses
import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.errors import ConfigError
from bastion.protect.detect import ENTITIES, RECOGNIZERS, Detector, Finding, Recognizer
from bastion.protect.detect.recognizer import grouped, runs_on

if TYPE_CHECKING:
    from conftest import Found


def make_recognizer(**fields: object) -> Recognizer:
    """A toy recogniser: "ID-" and digits, valid when the digits add up to an even number."""
    defaults: dict[str, object] = {
        "name": "toy",
        "entity": "TOY",
        "patterns": (r"\bID-\d+\b",),
        "validate": lambda value: 0.6 if sum(int(c) for c in value if c.isdigit()) % 2 == 0 else None,
    }
    return Recognizer(**(defaults | fields))  # type: ignore[arg-type]


def test_findings_carry_spans_not_values() -> None:
    names = [field.name for field in dataclasses.fields(Finding)]
    assert names == ["type", "start", "end", "score", "recognizer"]
    finding = Finding("EMAIL_ADDRESS", 0, 5, 0.9, "email")
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.score = 1.0  # type: ignore[misc]


def test_recognisers_use_the_documented_entity_names_and_unique_names() -> None:
    assert {rec.entity for rec in RECOGNIZERS} == set(ENTITIES)
    names = [rec.name for rec in RECOGNIZERS]
    assert len(names) == len(set(names))


def test_findings_are_sorted_and_scan_many_scans_each(detector: Detector) -> None:
    texts = ["ip 10.0.0.1 and mail a@example.com and card 4111111111111111", "", "nothing here"]
    first, empty, nothing = detector.scan_many(texts)
    assert [f.type for f in first] == ["IP_ADDRESS", "EMAIL_ADDRESS", "CREDIT_CARD"]
    assert [f.start for f in first] == sorted(f.start for f in first)
    assert (empty, nothing) == ([], [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4111 1111 1111 1111", [("CREDIT_CARD", "4111 1111 1111 1111")]),  # not a phone inside it
        ("call 192.168.10.20", [("IP_ADDRESS", "192.168.10.20")]),  # an IP that parses as a phone
        ("ssn 219-45-6789", [("US_SSN", "219-45-6789")]),
        ("https://bob:pa55word@example.com", [("SECRET", "pa55word")]),
    ],
)
def test_overlaps_keep_the_surer_finding(found: Found, text: str, expected: list[tuple[str, str]]) -> None:
    assert [(kind, value) for kind, value, _ in found(text)] == expected


def test_offsets_count_characters_after_non_ascii_text(detector: Detector) -> None:
    text = "日本語のテキスト: 4111 1111 1111 1111 — ok 😀 jane@example.org"
    assert [text[f.start : f.end] for f in detector.scan(text)] == ["4111 1111 1111 1111", "jane@example.org"]


def test_context_words_raise_negative_words_lower_and_the_minimum_drops() -> None:
    detector = Detector([make_recognizer(context=("badge",), negative=("test",), min_score=0.5)])
    assert [f.score for f in detector.scan("badge ID-1234")] == [0.95]
    assert [f.score for f in detector.scan("my ID-1234")] == [0.6]
    assert detector.scan("test ID-1234") == []  # 0.6 - 0.35
    assert detector.scan("my ID-1235") == []  # odd digits: invalid
    assert [f.score for f in detector.scan("test badges ID-1234")] == [0.6]  # plural; both words


def test_needs_context_and_ceiling() -> None:
    needy = Detector([make_recognizer(context=("badge",), needs_context=True)])
    assert needy.scan("ID-1234") == []
    assert len(needy.scan("badge: ID-1234")) == 1
    capped = Detector([make_recognizer(validate=lambda value: 1.0, ceiling=0.7)])
    assert [f.score for f in capped.scan("ID-1")] == [0.7]


def test_numeric_values_glued_to_more_digits_are_not_values() -> None:
    detector = Detector([make_recognizer(patterns=(r"\b[\d.]{4,7}\b",), validate=lambda value: 0.9, glue=runs_on())])
    assert [f.start for f in detector.scan("1234 and 5678")] == [0, 9]
    assert detector.scan("1.1234") == []  # the pattern's candidate is a decimal number
    assert detector.scan("1234-5") == []  # the value runs on past a dash
    assert [f.start for f in detector.scan("1234 5")] == [0]  # a space does not join
    spaced = Detector([make_recognizer(patterns=(r"\b\d{4}\b",), validate=lambda value: 0.9, glue=runs_on(spaced=2))])
    assert spaced.scan("1234 56") == []  # two digits across a space: a row of numbers
    assert [f.start for f in spaced.scan("1234 5")] == [0]


def test_sub_spans_are_tried_longest_first() -> None:
    detector = Detector(
        [
            make_recognizer(
                patterns=(r"\b\d[\d ]*\d\b",), validate=lambda v: 0.9 if v == "22 33" else None, spans=grouped(4, 4)
            )
        ]
    )
    text = "11 22 33 44"
    assert [text[f.start : f.end] for f in detector.scan(text)] == ["22 33"]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [(r"(?<=a)b", "recogniser 'toy'"), ("caf\u00e9", "non-ASCII pattern")],
)
def test_patterns_that_do_not_compile_fail_at_construction(pattern: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Detector([make_recognizer(patterns=(pattern,))])


def test_threads_share_a_detector(detector: Detector) -> None:
    texts = [f"card 4111 1111 1111 1111 ip 10.0.0.{n} mail u{n}@example.com" for n in range(40)]
    expected = [detector.scan(text) for text in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(detector.scan, texts)) == expected


TRICKY = st.text(
    alphabet=st.sampled_from("0123456789 -.+()@:/=_abcxyzAKIGBDE\n\u200b\u00a0\u2013\uff11é日😀\ud800\u0336"),
    max_size=80,
)


@given(st.one_of(st.text(), TRICKY))
def test_scanning_never_fails_and_spans_fit_the_text(detector: Detector, text: str) -> None:
    findings = detector.scan(text)
    assert all(0 <= f.start < f.end <= len(text) for f in findings)
    assert all(a.end <= b.start for a, b in itertools.pairwise(findings))
    assert all(f.type in ENTITIES and 0 < f.score <= 1 for f in findings)


def test_a_memo_validates_each_value_once_across_the_scans_of_a_request() -> None:
    calls: list[str] = []

    def validate(value: str) -> float | None:
        calls.append(value)
        return 0.6 if value != "ID-7" else None

    detector = Detector([make_recognizer(validate=validate)])
    prompt = "Use ID-42 and ID-7"
    answer = f"fake says: {prompt} (choice 0)"  # the prompt's values come back, restored, in the answer
    memo: dict[tuple[int, str], float | None] = {}
    with_memo = [detector.scan(prompt, memo), detector.scan(answer, memo), detector.scan(answer[:20], memo)]
    assert sorted(calls) == ["ID-42", "ID-7"]  # each value once, valid or not
    calls.clear()
    assert with_memo == [detector.scan(prompt), detector.scan(answer), detector.scan(answer[:20])]
    assert len(calls) == 5


@given(
    st.lists(
        st.one_of(TRICKY, st.sampled_from(["+1 415 555 0132 ", "GB82 WEST 1234 5698 7654 32 ", "078-05-1120 "])),
        max_size=4,
    )
)
def test_scans_with_a_shared_memo_find_what_scans_without_it_find(detector: Detector, texts: list[str]) -> None:
    memo: dict[tuple[int, str], float | None] = {}
    joined = "".join(texts)
    assert [detector.scan(text, memo) for text in [*texts, joined]] == [detector.scan(t) for t in [*texts, joined]]
