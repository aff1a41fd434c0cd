from __future__ import annotations

import pytest

from bastion.protect.detect.countries import NAMES, RECOGNIZER, SCORE, find_countries


def countries(text: str) -> list[str]:
    return [text[finding.start : finding.end] for finding in find_countries(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I will be travelling to Tunisia next week.", ["Tunisia"]),
        ("Offices in Finland, Cyprus and Uruguay.", ["Finland", "Cyprus", "Uruguay"]),
        ("Slovenia's capital is Ljubljana.", ["Slovenia"]),  # a possessive
        (
            "Moved from the United Kingdom to the United States of America.",
            ["United Kingdom", "United States of America"],
        ),
        (
            "Papua New Guinea, Equatorial Guinea and Guinea-Bissau",
            ["Papua New Guinea", "Equatorial Guinea", "Guinea-Bissau"],
        ),
        ("Shipped to the U.S. and the UK.", ["U.S.", "UK"]),
        ("Côte d'Ivoire and São Tomé and Príncipe", ["Côte d'Ivoire", "São Tomé and Príncipe"]),
        ("24 Rue de Tanger\nESPOO\nFINLAND 02100", ["FINLAND"]),  # an address in capitals
        ("Cyprus (Greek)", ["Cyprus"]),
        # Whole words with their own capitals only.
        ("a finland-style sauna", []),
        ("The Finlandia hall", []),
        ("Austria-Hungary was an empire.", []),
        ("chinaware and a turkey sandwich", []),
        ("Dominican Republic, not Dominica", ["Dominican Republic", "Dominica"]),
        ("Nigeria and Niger", ["Nigeria", "Niger"]),
        ("CALL US TODAY", []),
        # A country that is also a first name: a person before a surname or after a title, else a country.
        ("Georgia Miller sent the invoice.", []),
        ("Ask Ms Georgia about it.", []),
        ("Dr. Jordan will call.", []),
        ("Chad Smith and Israel Cohen", []),
        ("She flew to Georgia last week.", ["Georgia"]),
        ("Jordan and Israel signed a treaty.", ["Jordan", "Israel"]),
        ("Visit India, Kenya or Chad.", ["India", "Kenya", "Chad"]),
    ],
)
def test_finds_country_names_as_whole_words(text: str, expected: list[str]) -> None:
    assert countries(text) == expected


def test_findings_are_scored_locations_from_this_recogniser() -> None:
    findings = list(find_countries("From Norway to Denmark"))
    assert [(finding.type, finding.start, finding.end) for finding in findings] == [
        ("LOCATION", 5, 11),
        ("LOCATION", 15, 22),
    ]
    assert all(finding.score == SCORE and finding.recognizer == RECOGNIZER for finding in findings)


@pytest.mark.parametrize("name", NAMES)
def test_every_listed_name_is_found_alone_and_in_capitals(name: str) -> None:
    assert countries(f"to {name}.") == [name]
    assert countries(f"TO {name.upper()}.") == [name.upper()]
