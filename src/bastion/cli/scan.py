"""``bastion scan``: find sensitive values in text read on stdin and print them as JSON."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from bastion.cli.common import fail
from bastion.errors import BastionError
from bastion.protect.detect import shared_detector
from bastion.protect.detect.tiers import Detection

ShowValues = Annotated[
    bool,
    typer.Option("--show-values", help="Also print each value found (they end up on your terminal and scrollback)."),
]
WithNer = Annotated[
    bool,
    typer.Option("--ner", help="Also find names, places and organisations (needs spaCy's en_core_web_sm)."),
]


def scan(show_values: ShowValues = False, ner: WithNer = False) -> None:
    """Find sensitive values in the text on stdin; print each as JSON: type, span, score, recognizer.

    ``span`` is ``[start, end]`` (also given as ``start`` and ``end``): offsets in characters of the input read
    as UTF-8 (bytes that are not UTF-8 count as one character each). Values are left out unless --show-values
    is given.
    """
    text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    detector = shared_detector()
    try:
        (findings,) = Detection(detector).detect_texts([text], ner=True) if ner else [detector.scan(text)]
    except BastionError as exc:
        raise fail(exc.message) from exc
    rows = []
    for finding in findings:
        row: dict[str, object] = {
            "type": finding.type,
            "span": [finding.start, finding.end],
            "start": finding.start,
            "end": finding.end,
            "score": finding.score,
            "recognizer": finding.recognizer,
        }
        if show_values:
            row["value"] = text[finding.start : finding.end]
        rows.append(row)
    typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
