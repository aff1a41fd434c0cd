"""Dates of birth: a real calendar date (1900-2099) with a birth word near it ("born", "DOB", "date of birth").

A date alone is not personal data, so this recogniser never reports one without context. Two-digit years
read as 19xx above 30 and 20xx otherwise (no clock is read: detection stays pure).
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING

from bastion.protect.detect.recognizer import Recognizer, runs_on

if TYPE_CHECKING:
    from collections.abc import Iterator

_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MONTH = r"(?:0?[1-9]|1[0-2])"
_MONTH_NAME = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_ORDINAL = r"(?:st|nd|rd|th)?"
ISO = rf"\b(?:19|20)\d{{2}}[\-/.]{_MONTH}[\-/.]{_DAY}\b"
NUMERIC = rf"\b{_DAY}[\-/.]{_DAY}[\-/.](?:19|20)?\d{{2}}\b"
DAY_FIRST = rf"\b{_DAY}{_ORDINAL}(?:\s+of)?\s+{_MONTH_NAME},?\s+(?:19|20)\d{{2}}\b"
MONTH_FIRST = rf"\b{_MONTH_NAME}\s+{_DAY}{_ORDINAL},?\s+(?:19|20)\d{{2}}\b"

_MONTHS = (
    *("january", "february", "march", "april", "may", "june"),
    *("july", "august", "september", "october", "november", "december"),
)
_NUMBER = re.compile(r"\d+")
_WORD = re.compile(r"[a-z]+")
_PIVOT = 30


def _month(word: str) -> int | None:
    """1-12 for a month name or its abbreviation ("sept" too), else ``None``."""
    for number, name in enumerate(_MONTHS, start=1):
        if len(word) >= 3 and name.startswith(word.rstrip(".")):
            return number
    return None


def _year(text: str) -> int:
    year = int(text)
    if len(text) > 2:
        return year
    return 1900 + year if year > _PIVOT else 2000 + year


def _readings(value: str) -> Iterator[tuple[int, int, int]]:
    """Every (year, month, day) the text can mean: 03/04/1990 is both 3 April and 4 March."""
    numbers = _NUMBER.findall(value)
    words = [word for word in _WORD.findall(value.lower()) if word not in {"st", "nd", "rd", "th", "of"}]
    if words:
        month = _month(words[0])
        if month is not None and len(numbers) == 2:
            day, year = sorted(numbers, key=len)
            yield _year(year), month, int(day)
        return
    if len(numbers) != 3:
        return
    if len(numbers[0]) == 4:
        yield int(numbers[0]), int(numbers[1]), int(numbers[2])
        return
    yield _year(numbers[2]), int(numbers[1]), int(numbers[0])
    yield _year(numbers[2]), int(numbers[0]), int(numbers[1])


def birth_date_score(value: str) -> float | None:
    """0.3 for a date that exists in 1900-2099 (context lifts it over the minimum)."""
    for year, month, day in _readings(value):
        try:
            date(year, month, day)
        except ValueError:
            continue
        if 1900 <= year <= 2099:
            return 0.3
    return None


RECOGNIZERS = (
    Recognizer(
        name="date_of_birth",
        entity="DATE_OF_BIRTH",
        patterns=(ISO, NUMERIC, DAY_FIRST, MONTH_FIRST),
        validate=birth_date_score,
        context=(
            *("born", "birth", "birthday", "birthdate", "dob", "d.o.b", "date of birth", "geboren", "geb"),
            *("geburtsdatum", "né", "née", "naissance", "nacimiento", "nacido", "nacida", "nascita", "nato", "nata"),
        ),
        needs_context=True,
        glue=runs_on(),
        caseless=True,
        ceiling=0.3,
    ),
)
