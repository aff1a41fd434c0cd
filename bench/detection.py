"""Detection accuracy and speed: Bastion's pattern tier, Bastion with the NER tier, and Presidio, in one run.

Run ``make bench-detection`` (it installs ``requirements-bench.lock``, Presidio included, then runs
``.venv/bin/python bench/detection.py``; about five minutes). It reads the labelled presidio-research sample
set (1,500 synthetic texts; read in place, never copied) and prints, as Markdown tables, precision, recall and
F1 per entity type and overall for the three, the throughput of each on one core on the same inputs, and the
pattern tier's own throughput on a generated mixed corpus (prose, chat, code, JSON, logs, some non-ASCII) in
prompt-sized pieces and as one large document. Without Presidio installed its column is left out, and says so.

Scoring, the same for all three: the set's entity names are mapped to Bastion's (``GOLD``); a prediction matches
a labelled span of the same type when they overlap by at least half of the longer one (an extension after a
phone number is not a miss); each labelled span matches once; predictions of other types are not scored. A
street address is not a type any of the three finds, so its labels are not scored, and a LOCATION found inside
one (the city or country of the address) is neither right nor wrong.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion.protect.detect import Detection, Detector, Finding, load_ner
from bastion.protect.detect.ner import installed_model
from corpus import chunks, corpus

DATASET = Path("/work/shared/data/presidio-research/synth_dataset_v2.json")
PATTERN_TYPES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS")
NAME_TYPES = ("PERSON", "LOCATION", "ORGANIZATION")
TYPES = PATTERN_TYPES + NAME_TYPES
# The set's entity names as Bastion's: the same, but for GPE (countries and cities), which is a LOCATION.
GOLD = {**{name: name for name in TYPES if name != "LOCATION"}, "GPE": "LOCATION"}
UNSCORED = "STREET_ADDRESS"
TARGET_MB_S = 20.0
TARGET_RATIO = 5.0  # Bastion with NER against Presidio, in throughput

Find = Callable[[list[str]], list[list[Finding]]]


@dataclass(frozen=True)
class System:
    """Something that finds entities in a batch of texts, and the types it claims to find."""

    name: str
    find: Find
    types: tuple[str, ...]


@dataclass(frozen=True)
class Gold:
    type: str
    start: int
    end: int


@dataclass(frozen=True)
class Sample:
    text: str
    golds: list[Gold]
    unscored: list[Gold] = field(default_factory=list)  # the street addresses


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Tally) -> None:
        self.tp, self.fp, self.fn = self.tp + other.tp, self.fp + other.fp, self.fn + other.fn

    def scores(self) -> tuple[float, float, float]:
        """Precision, recall and F1."""
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return precision, recall, f1


def load(path: Path) -> list[Sample]:
    """The texts and their labelled spans (character offsets), in Bastion's type names."""
    with path.open(encoding="utf-8") as file:
        samples = json.load(file)
    return [_sample(sample) for sample in samples]


def _sample(sample: dict[str, Any]) -> Sample:
    spans = [(s["entity_type"], s["start_position"], s["end_position"]) for s in sample["spans"]]
    golds = [Gold(GOLD[kind], start, end) for kind, start, end in spans if kind in GOLD]
    unscored = [Gold(kind, start, end) for kind, start, end in spans if kind == UNSCORED]
    return Sample(sample["full_text"], golds, unscored)


def _overlaps(finding: Finding, gold: Gold) -> bool:
    shared = min(finding.end, gold.end) - max(finding.start, gold.start)
    return shared * 2 >= max(finding.end - finding.start, gold.end - gold.start)


def _unscored(finding: Finding, sample: Sample) -> bool:
    return finding.type == "LOCATION" and any(
        g.start <= finding.start and finding.end <= g.end for g in sample.unscored
    )


def score(system: System, samples: list[Sample]) -> tuple[dict[str, Tally], list[str]]:
    """Per-type tallies over the types ``system`` claims, and its mistakes."""
    tallies = {name: Tally() for name in system.types}
    mistakes: list[str] = []
    for sample, findings in zip(samples, system.find([s.text for s in samples]), strict=True):
        unmatched = [gold for gold in sample.golds if gold.type in tallies]
        for finding in findings:
            if finding.type not in tallies or _unscored(finding, sample):
                continue
            match = next((g for g in unmatched if g.type == finding.type and _overlaps(finding, g)), None)
            if match is None:
                tallies[finding.type].fp += 1
                mistakes.append(f"FP {finding.type} {sample.text[finding.start : finding.end]!r}")
            else:
                tallies[finding.type].tp += 1
                unmatched.remove(match)
        for gold in unmatched:
            tallies[gold.type].fn += 1
            mistakes.append(f"FN {gold.type} {sample.text[gold.start : gold.end]!r}")
    return tallies, mistakes


def _cells(tallies: dict[str, Tally], name: str) -> list[str]:
    if name not in tallies:
        return ["—", "—", "—"]
    return [f"{value:.3f}" for value in tallies[name].scores()]


def _overall(tallies: dict[str, Tally]) -> Tally:
    total = Tally()
    for tally in tallies.values():
        total.add(tally)
    return total


def accuracy_table(systems: list[System], results: list[dict[str, Tally]]) -> list[str]:
    """Precision, recall and F1 per type, side by side; "—" where a system does not find that type."""
    head = ["entity", *(f"{system.name} {measure}" for system in systems for measure in ("P", "R", "F1"))]
    lines = [_row(head), _row(["---"] * len(head))]
    for name in TYPES:
        lines.append(_row([name, *(cell for tallies in results for cell in _cells(tallies, name))]))
    overall = [f"{value:.3f}" for tallies in results for value in _overall(tallies).scores()]
    lines.append(_row(["all (micro, over the types each finds)", *overall]))
    return lines


def f1_targets(systems: list[System], results: list[dict[str, Tally]]) -> list[str]:
    """Bastion with NER (the second system) against Presidio (the third), on every type both find."""
    if len(systems) < 3:
        return ["F1 against Presidio: not measured (Presidio is not installed)"]
    ours, theirs = results[1], results[2]
    lines = []
    for name in TYPES:
        if name in ours and name in theirs:
            mine, other = ours[name].scores()[2], theirs[name].scores()[2]
            verdict = "met" if mine >= other else "MISSED"
            lines.append(f"F1 {name}: Bastion {mine:.3f}, Presidio {other:.3f} (target >=): {verdict}")
    return lines


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def throughput(find: Find, texts: list[str], rounds: int = 3) -> float:
    """Best of ``rounds`` runs over ``texts``, in MB (UTF-8) per second of this process's CPU time: the
    machine may be shared, and CPU time is what one core gives the scan."""
    size = sum(len(text.encode("utf-8")) for text in texts)
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        find(texts)
        best = min(best, time.process_time() - started)
    return size / best / 1e6


def speed_table(detector: Detector, dataset_texts: list[str], megabytes: int) -> list[str]:
    """The pattern tier alone, against its target, on inputs of several shapes."""
    mixed = corpus(megabytes * 1_000_000)
    clean = corpus(megabytes * 1_000_000, sensitive=False)
    rows = [
        ("presidio-research set, one text per scan", dataset_texts),
        ("mixed corpus in 4 KB prompts", chunks(mixed, 4_000)),
        ("mixed corpus in 64 KB documents", chunks(mixed, 64_000)),
        (f"mixed corpus as one {megabytes} MB document", [mixed]),
        ("same without sensitive values, 4 KB prompts", chunks(clean, 4_000)),
    ]
    lines = [_row(["input", "MB/s", f"target >= {TARGET_MB_S:g} MB/s"]), _row(["---"] * 3)]
    for label, texts in rows:
        rate = throughput(detector.scan_many, texts)
        lines.append(_row([label, f"{rate:.2f}", "met" if rate >= TARGET_MB_S else "MISSED"]))
    return lines


def comparison_table(systems: list[System], inputs: list[tuple[str, list[str]]], rounds: int) -> list[str]:
    """MB/s of each system on the same inputs, and Bastion with NER's ratio to Presidio where it ran."""
    head = ["input", *(f"{system.name} MB/s" for system in systems)]
    compared = len(systems) >= 3
    if compared:
        head.append(f"with NER ÷ Presidio (target >= {TARGET_RATIO:g})")
    lines = [_row(head), _row(["---"] * len(head))]
    for label, texts in inputs:
        rates = [throughput(system.find, texts, rounds) for system in systems]
        cells = [label, *(f"{rate:.4f}" for rate in rates)]
        if compared:
            ratio = rates[1] / rates[2]
            cells.append(f"{ratio:.2f}: {'met' if ratio >= TARGET_RATIO else 'MISSED'}")
        lines.append(_row(cells))
    return lines


def presidio(model: str) -> System | None:
    """Presidio's AnalyzerEngine with its default recognisers and the same spaCy model, batched as Bastion is;
    ``None`` when presidio-analyzer is not installed."""
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")  # its bundled suffix list: no download
    try:
        from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError:
        return None
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    config = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
    engine = AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration=config).create_engine())
    batch = BatchAnalyzerEngine(engine)

    def find(texts: list[str]) -> list[list[Finding]]:
        results = batch.analyze_iterator(texts, language="en", batch_size=64)
        return [[Finding(r.entity_type, r.start, r.end, r.score, "presidio") for r in found] for found in results]

    return System("Presidio", find, TYPES)


def systems(detector: Detector) -> list[System]:
    """The pattern tier, Bastion with NER, and Presidio when installed, each loaded and warmed up."""
    detection = Detection(detector)
    found = [
        System("pattern tier", detector.scan_many, PATTERN_TYPES),
        System("with NER", lambda texts: detection.detect_texts(texts, ner=True), TYPES),
    ]
    model = installed_model()
    started = time.perf_counter()
    load_ner()
    print(f"loaded {model} (ner only) in {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    rival = presidio(str(model))
    if rival is None:
        print("Presidio is not installed, so its column is left out: run `make bench-detection` to install it.")
    else:
        found.append(rival)
        print(f"loaded Presidio's AnalyzerEngine with {model} in {time.perf_counter() - started:.2f} s")
    for system in found:
        system.find(["Warm-up: Jane Doe of Acme Corp in Paris, jane@example.org."])
    return found


def pin_one_core() -> str:
    """Run on a single CPU so the numbers are per core."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity on this platform)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--megabytes", type=int, default=8, help="size of the generated mixed corpus")
    parser.add_argument("--compare-kilobytes", type=int, default=256, help="mixed corpus that all three read")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each system per input; the best counts")
    parser.add_argument("--mistakes", type=int, default=0, help="print this many mistakes of Bastion with NER")
    args = parser.parse_args()
    print(f"Detection benchmark: {pin_one_core()}")
    started = time.perf_counter()
    detector = Detector()
    print(f"compiled {len(detector.recognizers)} recognisers in {time.perf_counter() - started:.2f} s")
    found = systems(detector)
    samples = load(args.dataset)
    results = [score(system, samples) for system in found]
    print(f"\nAccuracy on {args.dataset.name} ({len(samples)} texts):\n")
    print("\n".join(accuracy_table(found, [tallies for tallies, _ in results])))
    print("\n".join(["", *f1_targets(found, [tallies for tallies, _ in results])]))
    for line in sorted(Counter(results[1][1]).elements())[: args.mistakes]:
        print("  ", line)
    texts = [sample.text for sample in samples]
    inputs = [
        (f"presidio-research set, {len(texts)} texts", texts),
        (
            f"mixed corpus, {args.compare_kilobytes} KB in 4 KB prompts",
            chunks(corpus(args.compare_kilobytes * 1000), 4_000),
        ),
    ]
    print("\nThroughput on one core, the same inputs for all:\n")
    print("\n".join(comparison_table(found, inputs, args.rounds)))
    print("\nThe pattern tier alone:\n")
    print("\n".join(speed_table(detector, texts, args.megabytes)))


if __name__ == "__main__":
    main()
