"""``bastion scan``: find sensitive values in text read on stdin and print them as JSON."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from bastion.protect.detect import Detector

ShowValues = Annotated[
    bool,
    typer.Option("--show-values", help="Also print each value found (they end up on your terminal and scrollback)."),
]


def scan(show_values: ShowValues = False) -> None:
    """Find sensitive values in the text on stdin; print each as JSON: type, start, end, score, recognizer.

    Offsets count characters of the input read as UTF-8 (bytes that are not UTF-8 count as one character
    each). Values are left out unless --show-values is given.
    """
    text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    rows = []
    for finding in Detector().scan(text):
        row: dict[str, object] = {
            "type": finding.type,
            "start": finding.start,
            "end": finding.end,
            "score": finding.score,
            "recognizer": finding.recognizer,
        }
        if show_values:
            row["value"] = text[finding.start : finding.end]
        rows.append(row)
    typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
