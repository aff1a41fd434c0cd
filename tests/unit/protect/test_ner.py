from __future__ import annotations

import importlib
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
import spacy

from bastion.errors import ConfigError
from bastion.protect.detect import Detection, Detector, Finding, NerTier, load_ner, merge, ner_available
from bastion.protect.detect import ner as ner_module

if TYPE_CHECKING:
    from collections.abc import Callable

    from spacy.language import Language

# The real tier: en_core_web_sm (or its copy on the package index), which the dev extra installs.
SENTENCES = [
    ("My name is Barack Obama and I live in Chicago.", [("PERSON", "Barack Obama"), ("LOCATION", "Chicago")]),
    ("She moved from Paris to Berlin last year.", [("LOCATION", "Paris"), ("LOCATION", "Berlin")]),
    ("He works at Microsoft in Seattle.", [("ORGANIZATION", "Microsoft"), ("LOCATION", "Seattle")]),
    (
        "I flew to Tokyo with John Smith, who works for Toyota.",
        [("LOCATION", "Tokyo"), ("PERSON", "John Smith"), ("ORGANIZATION", "Toyota")],
    ),
    ("Angela Merkel's office called.", [("PERSON", "Angela Merkel")]),
    ("the build is green and the tests pass.", []),
    ("SELECT id FROM orders WHERE total > 100;", []),
]


def named(text: str, findings: list[Finding]) -> list[tuple[str, str]]:
    return [(finding.type, text[finding.start : finding.end]) for finding in findings]


def make_ruler_tier(patterns: list[dict[str, str]], **options: int) -> tuple[NerTier, list[int]]:
    """A tier over a blank English pipeline whose entities come from fixed patterns, and a list that counts how
    often the pipeline was loaded: spans and labels that a test decides, without a model."""
    loads: list[int] = []

    def load() -> Language:
        loads.append(1)
        nlp = spacy.blank("en")
        ruler = nlp.add_pipe("entity_ruler")
        ruler.add_patterns(patterns)  # type: ignore[attr-defined]
        return nlp

    return NerTier(load, **options), loads


@pytest.fixture(scope="session")
def tier() -> NerTier:
    return load_ner()


@pytest.mark.parametrize(("text", "expected"), SENTENCES)
def test_finds_people_places_and_organisations_with_their_spans(tier: NerTier, text: str, expected: list) -> None:
    findings = tier.scan(text)
    assert named(text, findings) == expected
    assert all(finding.recognizer == "spacy_ner" for finding in findings)
    assert all(finding.score == ner_module.SCORES[finding.type] for finding in findings)


def test_batched_results_equal_one_text_at_a_time(tier: NerTier) -> None:
    texts = [text for text, _ in SENTENCES] * 3
    one_by_one = [tier.scan(text) for text in texts]
    assert tier.scan_many(texts) == one_by_one
    assert tier.scan_many(texts, batch_size=2) == one_by_one


def test_threads_share_one_tier(tier: NerTier) -> None:
    texts = [text for text, _ in SENTENCES]
    expected = tier.scan_many(texts)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: tier.scan_many(texts), range(8)))
    assert results == [expected] * 8


def test_only_the_ner_component_runs_and_finds_what_the_whole_pipeline_finds() -> None:
    """en_core_web_sm's ner has its own tok2vec, so leaving the rest out changes no entity."""
    model = ner_module.installed_model()
    assert model is not None
    full, only_ner = spacy.load(model), ner_module._load_pipeline()
    assert only_ner.pipe_names == ["ner"]
    for text, _ in SENTENCES:
        assert [(e.start_char, e.end_char, e.label_) for e in only_ner(text).ents] == [
            (e.start_char, e.end_char, e.label_) for e in full(text).ents
        ]


@pytest.mark.parametrize(
    ("label", "text", "entity", "expected"),
    [
        ("PERSON", "Hello Anna's friend", "Anna's", [("PERSON", "Anna")]),
        ("PERSON", "ask Allan\nEchocardiographer today", "Allan\nEchocardiographer", [("PERSON", "Allan")]),
        ("PERSON", "see Ann Lee. today", "Ann Lee.", [("PERSON", "Ann Lee")]),
        ("GPE", "fly to Oslo", "Oslo", [("LOCATION", "Oslo")]),
        ("LOC", "sail the Baltic Sea", "Baltic Sea", [("LOCATION", "Baltic Sea")]),
        ("FAC", "meet at Bay Street", "Bay Street", [("LOCATION", "Bay Street")]),
        ("ORG", "join Acme Corp", "Acme Corp", [("ORGANIZATION", "Acme Corp")]),
        ("NORP", "some Norwegians", "Norwegians", []),
        ("DATE", "on Tuesday", "Tuesday", []),
        ("PERSON", "walk to 6750 Koskikatu", "Koskikatu", []),  # right after a house number: a street
        ("ORG", "walk to 12 Acme", "Acme", []),
        ("PERSON", "walk down Hannah Street", "Hannah Street", []),  # ends in a street word
        ("PERSON", "walk down Hannah Rd. now", "Hannah", []),  # followed by one
        ("PERSON", "call R2D2 now", "R2D2", []),  # a digit: no person's name
        ("ORG", "join 3M Labs", "3M Labs", [("ORGANIZATION", "3M Labs")]),  # an organisation's may have one
        ("PERSON", "call Ann Park now", "Ann Park", [("PERSON", "Ann Park")]),  # a surname, not a street word
    ],
)
def test_labels_and_spans_are_mapped_and_tidied(label: str, text: str, entity: str, expected: list) -> None:
    ruler, _ = make_ruler_tier([{"label": label, "pattern": entity}])
    assert named(text, ruler.scan(text)) == expected


def test_long_texts_are_read_in_pieces_with_spans_in_the_whole_text() -> None:
    ruler, _ = make_ruler_tier([{"label": "PERSON", "pattern": "Alice Smith"}])
    filler = "lorem ipsum dolor sit amet " * 40
    text = "".join(f"{filler}Alice Smith\n" for _ in range(30))
    assert len(text) > 3 * ner_module.PIECE
    findings = ruler.scan(text)
    assert len(findings) == 30
    assert {text[f.start : f.end] for f in findings} == {"Alice Smith"}


@pytest.mark.parametrize("text", ["", "short", "a" * (ner_module.PIECE * 2 + 7), ("word " * 5000) + "\n" + "x" * 9000])
def test_pieces_cover_the_text_and_keep_under_the_limit(text: str) -> None:
    pieces = list(ner_module._pieces(text))
    assert "".join(piece for _, piece in pieces) == text
    assert all(len(piece) <= ner_module.PIECE for _, piece in pieces)
    assert [offset for offset, _ in pieces] == [sum(len(p) for _, p in pieces[:i]) for i in range(len(pieces))]


def test_the_pipeline_is_loaded_afresh_once_its_vocabulary_passes_the_limit() -> None:
    known = len(spacy.blank("en")("Bob says hi again").vocab)
    ruler, loads = make_ruler_tier([{"label": "PERSON", "pattern": "Bob"}], vocabulary_limit=known + 50)
    ruler.scan("Bob says hi")
    assert len(loads) == 1
    words = " ".join(f"word{number}" for number in range(100))
    assert named(f"Bob {words}", ruler.scan(f"Bob {words}")) == [("PERSON", "Bob")]
    assert named("Bob again", ruler.scan("Bob again")) == [("PERSON", "Bob")]
    assert len(loads) == 2


PATTERN = Finding("EMAIL_ADDRESS", 10, 30, 1.0, "email")


@pytest.mark.parametrize(
    ("names", "kept"),
    [
        ([Finding("PERSON", 0, 8, 0.75, "spacy_ner")], [Finding("PERSON", 0, 8, 0.75, "spacy_ner")]),
        ([Finding("PERSON", 0, 10, 0.75, "spacy_ner")], [Finding("PERSON", 0, 10, 0.75, "spacy_ner")]),
        ([Finding("PERSON", 0, 11, 0.75, "spacy_ner")], []),  # shares one character
        ([Finding("ORGANIZATION", 12, 20, 0.2, "spacy_ner")], []),  # inside
        ([Finding("ORGANIZATION", 5, 40, 0.2, "spacy_ner")], []),  # around
        ([Finding("LOCATION", 29, 35, 0.7, "spacy_ner")], []),
        ([Finding("LOCATION", 30, 35, 0.7, "spacy_ner")], [Finding("LOCATION", 30, 35, 0.7, "spacy_ner")]),
    ],
)
def test_merge_keeps_pattern_findings_over_overlapping_names(names: list[Finding], kept: list[Finding]) -> None:
    assert merge([PATTERN], names) == sorted([PATTERN, *kept], key=lambda finding: finding.start)


def test_merge_sorts_by_start_across_tiers() -> None:
    patterns = [Finding("EMAIL_ADDRESS", 10, 20, 1.0, "email"), Finding("IP_ADDRESS", 50, 60, 1.0, "ip")]
    names = [Finding("PERSON", 0, 5, 0.75, "spacy_ner"), Finding("LOCATION", 30, 40, 0.7, "spacy_ner")]
    assert merge(patterns, names) == [names[0], patterns[0], names[1], patterns[1]]


def test_detection_runs_the_ner_tier_only_when_asked() -> None:
    text = "Mail Jane Doe at jane.doe@example.org"
    ruler, loads = make_ruler_tier(
        [{"label": "PERSON", "pattern": "Jane Doe"}, {"label": "ORG", "pattern": "jane.doe@example.org"}]
    )
    detection = Detection(Detector(), ner=lambda: ruler)
    assert named(text, detection.detect_texts([text], ner=False)[0]) == [("EMAIL_ADDRESS", "jane.doe@example.org")]
    assert loads == []
    both = detection.detect_texts([text, "no names"], ner=True)
    assert [named(text, both[0]), both[1]] == [[("PERSON", "Jane Doe"), ("EMAIL_ADDRESS", "jane.doe@example.org")], []]


def test_country_names_fill_in_where_the_pipeline_found_nothing() -> None:
    text = "Jordan Smith flew from Finland to Georgia for the Norway Cup."
    ruler, _ = make_ruler_tier(
        [{"label": "PERSON", "pattern": "Jordan Smith"}, {"label": "ORG", "pattern": "the Norway Cup"}]
    )
    findings = ruler.scan(text)
    assert named(text, findings) == [
        ("PERSON", "Jordan Smith"),
        ("LOCATION", "Finland"),
        ("LOCATION", "Georgia"),
        ("ORGANIZATION", "the Norway Cup"),  # the pipeline's reading stands
    ]
    assert [finding.recognizer for finding in findings] == ["spacy_ner", "country_name", "country_name", "spacy_ner"]


def test_a_missing_model_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ner_module, "MODELS", ("no_such_spacy_model",))
    assert not ner_available()
    with pytest.raises(ConfigError, match=r"pip install 'bastion-gateway\[ner\]'"):
        load_ner.__wrapped__()


def test_missing_spacy_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    real: Callable[[str], object] = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "spacy" else real(name))
    assert not ner_available()
    with pytest.raises(ConfigError, match="needs spaCy"):
        NerTier(ner_module._load_pipeline).warm()


def test_the_dev_install_has_the_tier() -> None:
    assert ner_available()
    assert load_ner() is load_ner()
