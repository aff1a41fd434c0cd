"""Detection accuracy and speed of Bastion's pattern tier.

Run ``.venv/bin/python bench/detection.py``. It reads the labelled presidio-research sample set (1,500 synthetic
texts; read in place, never copied) and prints precision, recall and F1 per entity type the set labels and the
pattern tier supports, then the throughput in MB/s on one core, on that set and on a generated mixed corpus
(prose, chat, code, JSON, logs, some non-ASCII) in prompt-sized pieces and as one large document.

A prediction matches a labelled span of the same type when they overlap by at least half of the longer one
(an extension after a phone number is not a miss); each labelled span matches once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bastion.protect.detect import Detector, Finding

DATASET = Path("/work/shared/data/presidio-research/synth_dataset_v2.json")
# The set's entity names that the pattern tier also detects (the names happen to be the same).
TYPES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS")
TARGET_MB_S = 20.0


@dataclass(frozen=True)
class Gold:
    type: str
    start: int
    end: int


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def row(self, name: str) -> str:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return f"{name:<16}{self.tp:>6}{self.fp:>6}{self.fn:>6}{precision:>11.3f}{recall:>8.3f}{f1:>8.3f}"


def load(path: Path) -> list[tuple[str, list[Gold]]]:
    """The texts and their labelled spans (character offsets)."""
    samples = json.loads(path.read_text(encoding="utf-8"))
    return [
        (
            sample["full_text"],
            [Gold(s["entity_type"], s["start_position"], s["end_position"]) for s in sample["spans"]],
        )
        for sample in samples
    ]


def _overlaps(finding: Finding, gold: Gold) -> bool:
    shared = min(finding.end, gold.end) - max(finding.start, gold.start)
    return shared * 2 >= max(finding.end - finding.start, gold.end - gold.start)


def score(detector: Detector, samples: list[tuple[str, list[Gold]]]) -> tuple[dict[str, Tally], list[str]]:
    """Per-type tallies, and a few mistakes to look at."""
    tallies = {name: Tally() for name in TYPES}
    mistakes: list[str] = []
    for text, golds in samples:
        unmatched = [gold for gold in golds if gold.type in TYPES]
        for finding in detector.scan(text):
            if finding.type not in TYPES:
                continue
            match = next((g for g in unmatched if g.type == finding.type and _overlaps(finding, g)), None)
            if match is None:
                tallies[finding.type].fp += 1
                mistakes.append(f"FP {finding.type} {text[finding.start : finding.end]!r}")
            else:
                tallies[finding.type].tp += 1
                unmatched.remove(match)
        for gold in unmatched:
            tallies[gold.type].fn += 1
            mistakes.append(f"FN {gold.type} {text[gold.start : gold.end]!r}")
    return tallies, mistakes


def accuracy_table(tallies: dict[str, Tally]) -> list[str]:
    total = Tally()
    for tally in tallies.values():
        total.tp, total.fp, total.fn = total.tp + tally.tp, total.fp + tally.fp, total.fn + tally.fn
    head = f"{'entity':<16}{'TP':>6}{'FP':>6}{'FN':>6}{'precision':>11}{'recall':>8}{'F1':>8}"
    return [head, *(tallies[name].row(name) for name in TYPES), total.row("all (micro)")]


# The generated corpus: what prompts are made of, with sensitive values now and then.
_WORDS = (
    "the",
    "a",
    "to",
    "of",
    "and",
    "in",
    "that",
    "is",
    "for",
    "it",
    "with",
    "as",
    "was",
    "on",
    "be",
    "at",
    "by",
    "this",
    "had",
    "not",
    "are",
    "but",
    "from",
    "or",
    "have",
    "an",
    "they",
    "which",
    "you",
    "were",
    "her",
    "all",
    "she",
    "there",
    "would",
    "their",
    "we",
    "him",
    "been",
    "has",
    "when",
    "who",
    "will",
    "more",
    "no",
    "if",
    "out",
    "so",
    "said",
    "what",
    "up",
    "its",
    "about",
    "into",
    "than",
    "them",
    "can",
    "only",
    "other",
    "new",
    "some",
    "could",
    "time",
    "these",
    "two",
    "may",
    "then",
    "do",
    "first",
    "any",
    "my",
    "now",
    "such",
    "like",
    "our",
    "over",
    "man",
    "me",
    "even",
    "most",
    "made",
    "after",
    "also",
    "did",
    "many",
    "before",
    "must",
    "through",
    "back",
    "years",
    "where",
    "much",
    "your",
    "way",
    "well",
    "down",
    "should",
    "because",
    "each",
    "just",
    "those",
    "people",
    "how",
    "too",
    "little",
    "state",
    "good",
    "very",
    "make",
    "world",
    "still",
    "own",
    "see",
    "men",
    "work",
    "long",
    "get",
    "here",
    "between",
    "both",
    "life",
    "being",
    "under",
    "never",
    "day",
    "same",
    "another",
    "know",
    "while",
    "last",
    "might",
    "us",
    "great",
    "old",
    "year",
    "off",
    "come",
    "since",
    "against",
    "go",
    "came",
    "right",
    "used",
    "take",
    "three",
    "model",
    "request",
    "response",
    "token",
    "user",
)
_CODE = (
    "def handler(event, context):\n    items = [x for x in event['Records'] if x.get('size', 0) > 1024]\n"
    "    return {'statusCode': 200, 'count': len(items)}\n",
    "for (let i = 0; i < rows.length; i++) { total += rows[i].amount * 1.2; }\n",
    "SELECT id, name, created_at FROM orders WHERE status = 'open' AND total > 100 LIMIT 50;\n",
    "version: '3.8'\nservices:\n  web:\n    image: nginx:1.25.3\n    ports: ['8080:80']\n",
)
_NON_ASCII = ("Grüße aus Köln, die Straße ist schön. ", "日本語のテキストも含まれます。", "Ça coûte 12,50 € — voilà. ")


def _sensitive(rng: random.Random) -> str:
    return rng.choice(
        (
            "jane.doe@example.org",
            "+1 415-555-0132",
            "4111 1111 1111 1111",
            "SSN 219-45-6789",
            "GB82 WEST 1234 5698 7654 32",
            "10.20.30.40",
            "api_key = 'c0ffee1234deadbeefcafe5678feedface90'",
        )
    )


def _piece(rng: random.Random, sensitive: bool) -> str:
    kind = rng.random()
    if kind < 0.45:
        return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(8, 40))) + ". "
    if kind < 0.65:
        return rng.choice(_CODE)
    if kind < 0.8:
        stamp = f"2024-05-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"
        return f"{stamp} INFO request id={rng.getrandbits(64):x} status=200 latency={rng.randint(1, 900)}ms\n"
    if kind < 0.9:
        amount = round(rng.random() * 1000, rng.choice((2, 2, 6)))  # prices, and now and then a coordinate
        return json.dumps({"id": rng.randint(1, 10**6), "amount": amount, "ok": True}) + "\n"
    if kind < 0.95 or not sensitive:
        return rng.choice(_NON_ASCII)
    return f"Please check {_sensitive(rng)} for me. "


def corpus(size: int, seed: int = 7, *, sensitive: bool = True) -> str:
    """About ``size`` characters of mixed prompt text, the same for a given seed; with ``sensitive``, one piece
    in twenty (about one every 2 KB) holds a sensitive value."""
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < size:
        parts.append(_piece(rng, sensitive))
        total += len(parts[-1])
    return "".join(parts)


def chunks(text: str, size: int) -> list[str]:
    return [text[at : at + size] for at in range(0, len(text), size)]


def throughput(detector: Detector, texts: list[str], rounds: int = 3) -> float:
    """Best of ``rounds`` runs over ``texts``, in MB (UTF-8) per second of this process's CPU time: the
    machine may be shared, and CPU time is what one core gives the scan."""
    size = sum(len(text.encode("utf-8")) for text in texts)
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        detector.scan_many(texts)
        best = min(best, time.process_time() - started)
    return size / best / 1e6


def speed_table(detector: Detector, dataset_texts: list[str], megabytes: int) -> list[str]:
    mixed = corpus(megabytes * 1_000_000)
    clean = corpus(megabytes * 1_000_000, sensitive=False)
    rows = [
        ("presidio-research set, one text per scan", dataset_texts),
        ("mixed corpus in 4 KB prompts", chunks(mixed, 4_000)),
        ("mixed corpus in 64 KB documents", chunks(mixed, 64_000)),
        (f"mixed corpus as one {megabytes} MB document", [mixed]),
        ("same without sensitive values, 4 KB prompts", chunks(clean, 4_000)),
    ]
    lines = [f"{'input':<48}{'MB/s':>8}   target >= {TARGET_MB_S:g} MB/s"]
    for label, texts in rows:
        rate = throughput(detector, texts)
        lines.append(f"{label:<48}{rate:>8.1f}   {'met' if rate >= TARGET_MB_S else 'MISSED'}")
    return lines


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
    parser.add_argument("--mistakes", type=int, default=0, help="print this many false positives and negatives")
    args = parser.parse_args()
    print(f"Bastion pattern tier: {pin_one_core()}")
    started = time.perf_counter()
    detector = Detector()
    print(f"compiled {len(detector.recognizers)} recognisers in {time.perf_counter() - started:.2f} s\n")
    samples = load(args.dataset)
    tallies, mistakes = score(detector, samples)
    print(f"Accuracy on {args.dataset.name} ({len(samples)} texts), {', '.join(TYPES)}:")
    print("\n".join(accuracy_table(tallies)))
    for line in sorted(Counter(mistakes).elements())[: args.mistakes]:
        print("  ", line)
    print()
    print("\n".join(speed_table(detector, [text for text, _ in samples], args.megabytes)))


if __name__ == "__main__":
    main()
