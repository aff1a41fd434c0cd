from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

if TYPE_CHECKING:
    from bastion.protect.detect import Detector

from bastion.protect.normalize import DROPPED, ONE_FOR_ONE, fold_runs, normalize, substitute

INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u2066", "\U000e0041", "\ufe0f"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain ascii", "plain ascii"),
        ("\uff14\uff11\uff11\uff11 full width", "4111 full width"),
        ("\u0661\u0662 \u06f4\u06f5 \u0967\u0968", "12 45 12"),  # Arabic-Indic, Persian and Devanagari digits
        ("\U0001d7cf\U0001d7d0", "12"),  # mathematical bold digits
        ("\u2460\u2461", "12"),  # circled digits
        ("a\u00a0b\u2009c\u202fd\u3000e", "a b c d e"),  # no-break, thin, narrow and ideographic spaces
        ("1\u20102\u20113\u20124\u20135\u20146\u22127\ufe638\uff0d9", "1-2-3-4-5-6-7-8-9"),  # dashes and minus signs
        ("a\u2028b\u2029c", "a\nb\nc"),
        ("jo\u200bhn\u200d@ex\u2060ample.com", "john@example.com"),  # zero-width characters
        ("12\u202e34\u202c56\u206678\u2069", "12345678"),  # bidi overrides and isolates
        ("pay\U000e0070\U000e0061\U000e0079", "pay"),  # Unicode tag characters
        ("soft\u00adhyphen", "softhyphen"),
        ("4\u03361\u03361\u0336", "411"),  # strike-through on digits
        ("1\u20e3", "1"),  # a keycap
        ("cafe\u0301", "café"),  # composition is kept where it makes a letter
        ("\u0915\u093f", "\u0915\u093f"),  # Devanagari vowel signs stay on their letters
        ("4\u200b\u0489", "4"),  # a mark behind an invisible still sits on the digit
        ("\ufb01le", "file"),  # NFKC
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ("", ""),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text).text == expected


@pytest.mark.parametrize(
    ("text", "span", "original"),
    [
        ("jo\u200bhn@example.com", (0, 16), "jo\u200bhn@example.com"),
        ("x \u200bjohn@example.com y", (2, 18), "john@example.com"),  # a leading invisible is left out
        ("\uff14\uff11\u00a0\uff11\uff11", (0, 5), "\uff14\uff11\u00a0\uff11\uff11"),
        ("call \ufb01le now", (5, 9), "\ufb01le"),  # both letters of the ligature map to it
        ("cafe\u0301!", (3, 4), "e\u0301"),  # a folded cluster maps as a whole
        ("a\u200b", (0, 1), "a\u200b"),  # a span touching the end takes in what was dropped there
    ],
)
def test_spans_map_back_to_the_original(text: str, span: tuple[int, int], original: str) -> None:
    start, end = normalize(text).to_original(*span)
    assert text[start:end] == original


def test_bad_spans_are_refused() -> None:
    normalized = normalize("abc")
    with pytest.raises(ValueError, match="outside"):
        normalized.to_original(2, 5)
    with pytest.raises(IndexError, match="outside"):
        normalized.origin(3)


@given(st.text())
def test_the_whole_normalised_text_maps_to_the_whole_original(text: str) -> None:
    normalized = normalize(text)
    assert normalized.to_original(0, len(normalized.text)) == (0, len(text))


@given(st.text(), st.data())
def test_every_span_maps_inside_the_original_in_order(text: str, data: st.DataObject) -> None:
    normalized = normalize(text)
    size = len(normalized.text)
    start = data.draw(st.integers(0, size))
    end = data.draw(st.integers(start, size))
    left, right = normalized.to_original(start, end)
    assert 0 <= left <= right <= len(text)
    for index in range(size):
        low, high = normalized.origin(index)
        assert 0 <= low < high <= len(text)


MARKS = ["\u0301", "\u0336", "\u20e3", "\u0489", "\u093f", "\U0001d167"]
FOLDING = st.sampled_from(
    [chr(code) for code in (*ONE_FOR_ONE, *DROPPED)] + MARKS + ["\ud800", "\u00e9", "e", "4", " "]
)


@given(st.text(alphabet=st.characters() | FOLDING))
def test_the_detectors_fast_path_normalises_as_normalize_does(detector: Detector, text: str) -> None:
    fast, slow = detector.normalize(text), normalize(text)
    assert fast.text == slow.text
    for index in range(len(fast.text)):
        (start, end), (outer_start, outer_end) = fast.origin(index), slow.origin(index)
        assert outer_start <= start < end <= outer_end  # the same, or tighter where a mark follows an invisible


@given(st.lists(st.sampled_from([chr(code) for code in ONE_FOR_ONE]) | st.text(max_size=3)))
def test_substitute_keeps_every_character_in_place(parts: list[str]) -> None:
    text = "".join(parts)
    positions = [index for index, char in enumerate(text) if ord(char) in set(ONE_FOR_ONE)]
    substituted = substitute(text, positions)
    assert len(substituted.text) == len(text)
    assert substituted.to_original(0, len(text)) == (0, len(text))


def test_fold_runs_folds_only_the_runs() -> None:
    assert fold_runs("a\u2014b\u2014c", [(1, 2)]).text == "a-b\u2014c"
