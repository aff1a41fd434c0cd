from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from bastion.cli.scan import scan


def run(*args: str, stdin: str | bytes) -> tuple[int, str]:
    app = typer.Typer()
    app.command()(scan)
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout


def test_scan_prints_findings_without_values() -> None:
    code, out = run(stdin="mail jane@example.org, card 4111 1111 1111 1111\n")
    assert code == 0
    assert json.loads(out) == [
        {
            "type": "EMAIL_ADDRESS",
            "span": [5, 21],
            "start": 5,
            "end": 21,
            "score": 1.0,
            "recognizer": "email",
        },  # "mail" before it
        {"type": "CREDIT_CARD", "span": [28, 47], "start": 28, "end": 47, "score": 1.0, "recognizer": "credit_card"},
    ]
    assert "jane@example.org" not in out and "4111" not in out


def test_scan_shows_values_when_asked() -> None:
    code, out = run("--show-values", stdin="key AKIAIOSFODNN7EXAMPLE")
    assert code == 0
    (finding,) = json.loads(out)
    assert finding["value"] == "AKIAIOSFODNN7EXAMPLE" and finding["recognizer"] == "aws_access_key"


def test_scan_reads_any_bytes() -> None:
    code, out = run(stdin=b"\xff\xfe ssn 219-45-6789")
    assert code == 0
    assert [(f["type"], f["start"]) for f in json.loads(out)] == [("US_SSN", 7)]


def test_scan_of_nothing_is_an_empty_list() -> None:
    assert run(stdin="") == (0, "[]\n")
