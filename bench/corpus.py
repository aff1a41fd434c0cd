"""A generated corpus of what prompts are made of (prose, chat, code, JSON, logs, some non-ASCII), with
sensitive values now and then: the same text for a given seed, for the detection benchmarks."""

from __future__ import annotations

import json
import random

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
