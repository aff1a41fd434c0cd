from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bastion.protect.detect.recognizers.dates import birth_date_score

if TYPE_CHECKING:
    from conftest import Found


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("she was born on 3 March 1985 in Lyon", "3 March 1985"),
        ("DOB: 1990-01-31", "1990-01-31"),
        ("Date of birth: 31/01/1990", "31/01/1990"),
        ("Birthday: January 5th, 1979", "January 5th, 1979"),
        ("born the 3rd of Sept 1985", "3rd of Sept 1985"),
        ("d.o.b. 01.02.75", "01.02.75"),
        ("geboren am 24.12.1964", "24.12.1964"),
        ("the meeting is on 2024-01-31", None),  # a date, but nothing says it is a birth date
        ("DOB: 1990-02-30", None),  # no such day
        ("DOB: 1850-01-01", None),  # outside 1900-2099
        ("born 13/13/1990", None),  # neither reading is a date
        ("born in Mayhem 5, 1990", None),  # not a month
    ],
)
def test_date_of_birth(found: Found, text: str, value: str | None) -> None:
    expected = [("DATE_OF_BIRTH", value, "date_of_birth")] if value else []
    assert [item for item in found(text) if item[0] == "DATE_OF_BIRTH"] == expected


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("03/04/1990", True),  # 3 April or 4 March
        ("31/12/1990", True),  # day first
        ("12/31/1990", True),  # month first
        ("29.02.2000", True),  # a leap year
        ("29.02.1900", False),  # not one
        ("1.2.45", True),  # 1945
        ("1.2.29", True),  # 2029
    ],
)
def test_birth_date_readings(value: str, valid: bool) -> None:
    assert (birth_date_score(value) is not None) is valid
