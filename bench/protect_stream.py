"""Speed of the answer's streaming path: ``StreamRestorer`` then ``StreamMasker`` over one streamed answer.

Run ``.venv/bin/python bench/protect_stream.py``. It builds a 10 KB answer (prose, lists, a little code) holding
ten placeholders and two values the caller never sent, feeds it 1, 8 and 64 characters at a time through the
restorer alone, then through restorer and masker with a regex stand-in detector and with Bastion's ``Detector``
(without and with a memo of validator results for the answer, as a request's masker keeps one), checks each
result against the one-shot ``mask(restore(text))``, and prints one Markdown table (MB/s of answer text, µs per
event, and the most characters held back at once). Takes a few seconds.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from bastion.protect.detect import Detector, Finding
from bastion.protect.output import OutputMasker, StreamMasker
from bastion.protect.restore import StreamRestorer, restore
from bastion.protect.tokenize import Vault

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

HEAD = ["path", "detector", "chars/event", "events", "MB/s", "µs/event", "max held", "= one-shot"]
VALUES = (
    ("PERSON", "Alice Smith"),
    ("PERSON", "Bob Jones"),
    ("PERSON", "Carol Díaz"),
    ("EMAIL_ADDRESS", "alice.smith@example.com"),
    ("EMAIL_ADDRESS", "bob@jones.example.org"),
    ("PHONE_NUMBER", "+1 415 555 2671"),
    ("PHONE_NUMBER", "+44 20 7946 0958"),
    ("CREDIT_CARD", "4111 1111 1111 1111"),
    ("IBAN_CODE", "DE89 3704 0044 0532 0130 00"),
    ("US_SSN", "078-05-1120"),
)
LEAKS = ("carol@leaked.example.net", "sk-proj-Z3xA9bQ7mN2pL5vR8tY1wK4jH6gF0dS")
PROSE = (
    "The quarterly review covered revenue, churn and the roadmap for the next two releases.",
    "- follow up on the open invoices before Friday\n- confirm the shipping address\n",
    "We agreed to keep the existing contract terms and revisit pricing in the spring.",
    "```python\nresult = client.fetch(account_id, limit=50)\nprint(result.total)\n```\n",
    "Let me know if anything here needs another look; happy to set up a call.",
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_KEY = re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9-]{20,}")


def regex_detect(text: str) -> list[Finding]:
    """A stand-in detector (emails and keys), to show the streaming machinery's own cost."""
    found = [Finding("EMAIL_ADDRESS", m.start(), m.end(), 1.0, "email") for m in _EMAIL.finditer(text)]
    return found + [Finding("SECRET", m.start(), m.end(), 1.0, "key") for m in _KEY.finditer(text)]


def answer(vault: Vault, size: int, rng: random.Random) -> str:
    """About ``size`` characters of prose with each vault placeholder once and the two leaks, spread evenly."""
    marks = [vault.placeholder(type_, value) for type_, value in VALUES]
    inserts = [f"Contact {mark} about it." for mark in marks] + [f"Also seen: {leak}." for leak in LEAKS]
    parts: list[str] = []
    length, step = 0, size // (len(inserts) + 1)
    while length < size:
        parts.append(rng.choice(PROSE) + " ")
        length += len(parts[-1])
        if inserts and length >= step * (len(VALUES) + len(LEAKS) + 1 - len(inserts)):
            parts.append(inserts.pop(0) + " ")
    return "".join(parts)


@dataclass(frozen=True)
class Run:
    """One pass over the answer."""

    path: str
    detector: str
    size: int
    events: int
    seconds: float
    held: int
    exact: bool

    def cells(self, chars: int) -> list[str]:
        return [
            self.path,
            self.detector,
            str(self.size),
            f"{self.events:,}",
            f"{chars / self.seconds / 1e6:.2f}",
            f"{self.seconds / self.events * 1e6:.1f}",
            str(self.held),
            "yes" if self.exact else "NO",
        ]


def streamed(text: str, size: int, restorer: StreamRestorer, masker: StreamMasker | None) -> tuple[str, float, int]:
    """Feed ``text`` in ``size``-character events: the output, the seconds it took, the most held at once."""
    deltas = [text[i : i + size] for i in range(0, len(text), size)]
    out: list[str] = []
    held = 0
    start = time.perf_counter()
    for delta in deltas:
        piece = restorer.feed(delta)
        out.append(masker.feed(piece) if masker else piece)
        held = max(held, restorer.held + (masker.held if masker else 0))
    tail = restorer.flush()
    out.append(masker.feed(tail) + masker.flush() if masker else tail)
    return "".join(out), time.perf_counter() - start, held


# A name, and what makes the detector for one answer (one request: a memo lives as long as its request).
Named = tuple[str, "Callable[[], Callable[[str], Sequence[Finding]]]"]


def measure(repeat: int, text: str, vault: Vault, size: int, detector: Named | None) -> Run:
    """The fastest of ``repeat`` passes (restoring only when ``detector`` is None), checked against one shot."""

    def masker() -> OutputMasker | None:
        return OutputMasker(detector[1](), supplied=vault.supplied()) if detector else None

    expected = restore(text, vault)
    one_shot = masker()
    expected = one_shot.mask(expected) if one_shot else expected
    passes = []
    for _ in range(repeat):
        fresh = masker()
        passes.append(streamed(text, size, StreamRestorer(vault), fresh.stream() if fresh else None))
    got, seconds, held = min(passes, key=lambda result: result[1])
    path = "restore + mask" if detector else "restore"
    return Run(path, detector[0] if detector else "-", size, -(-len(text) // size), seconds, held, got == expected)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000, help="answer size in characters (default 10,000)")
    parser.add_argument("--repeat", type=int, default=5, help="passes per row; the fastest counts (default 5)")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


def main() -> None:
    args = arguments()
    vault = Vault()
    text = answer(vault, args.size, random.Random(args.seed))
    detector = Detector()
    detectors: list[Named | None] = [
        None,
        ("regex stand-in", lambda: regex_detect),
        ("Detector", lambda: detector.scan),
        ("Detector, memo", lambda: partial(detector.scan, memo={})),
    ]
    runs = [measure(args.repeat, text, vault, size, detector) for detector in detectors for size in (1, 8, 64)]
    print(f"Answer of {len(text):,} characters, {len(vault)} placeholders, {len(LEAKS)} unsupplied values\n")
    print("\n".join(["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]))
    print("\n".join("| " + " | ".join(run.cells(len(text))) + " |" for run in runs))


if __name__ == "__main__":
    main()
