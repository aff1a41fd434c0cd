"""Country names as LOCATION, for the NER tier: spaCy's small pipeline misses many of them (Finland, Cyprus,
Uruguay, Slovenia), and the names of the world's countries are a closed list.

Matched as whole words, written as in ``NAMES`` or in capitals ("FINLAND" in an address). A name that is
also a first name ("Jordan", "Chad") is left out where it reads as one: before a capitalised word ("Chad
Miller") or after a title ("Ms Georgia"). The NER tier gives spaCy's own entities precedence over these.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bastion.protect.detect.finding import Finding

if TYPE_CHECKING:
    from collections.abc import Iterator

RECOGNIZER = "country_name"
# Right on the presidio-research sample set nearly every time it fires (bench/detection.py); as sure as a
# validated pattern is not, since "Turkey" can start a sentence about lunch.
SCORE = 0.85

# The member and observer states of the United Nations, in their usual English short names, then other
# names in common use for them and a few territories and constituent countries often named as countries.
# "US" alone is left out: in capitals it is also "us" ("CALL US").
NAMES = (
    "Afghanistan", "Albania", "Algeria", "Andorra", "Angola", "Antigua and Barbuda", "Argentina", "Armenia",
    "Australia", "Austria", "Azerbaijan", "Bahamas", "Bahrain", "Bangladesh", "Barbados", "Belarus", "Belgium",
    "Belize", "Benin", "Bhutan", "Bolivia", "Bosnia and Herzegovina", "Botswana", "Brazil", "Brunei", "Bulgaria",
    "Burkina Faso", "Burundi", "Cabo Verde", "Cambodia", "Cameroon", "Canada", "Central African Republic", "Chad",
    "Chile", "China", "Colombia", "Comoros", "Congo", "Costa Rica", "Côte d'Ivoire", "Croatia", "Cuba", "Cyprus",
    "Czechia", "Democratic Republic of the Congo", "Denmark", "Djibouti", "Dominica", "Dominican Republic",
    "Ecuador", "Egypt", "El Salvador", "Equatorial Guinea", "Eritrea", "Estonia", "Eswatini", "Ethiopia", "Fiji",
    "Finland", "France", "Gabon", "Gambia", "Georgia", "Germany", "Ghana", "Greece", "Grenada", "Guatemala",
    "Guinea", "Guinea-Bissau", "Guyana", "Haiti", "Holy See", "Honduras", "Hungary", "Iceland", "India",
    "Indonesia", "Iran", "Iraq", "Ireland", "Israel", "Italy", "Jamaica", "Japan", "Jordan", "Kazakhstan", "Kenya",
    "Kiribati", "Kuwait", "Kyrgyzstan", "Laos", "Latvia", "Lebanon", "Lesotho", "Liberia", "Libya",
    "Liechtenstein", "Lithuania", "Luxembourg", "Madagascar", "Malawi", "Malaysia", "Maldives", "Mali", "Malta",
    "Marshall Islands", "Mauritania", "Mauritius", "Mexico", "Micronesia", "Moldova", "Monaco", "Mongolia",
    "Montenegro", "Morocco", "Mozambique", "Myanmar", "Namibia", "Nauru", "Nepal", "Netherlands", "New Zealand",
    "Nicaragua", "Niger", "Nigeria", "North Korea", "North Macedonia", "Norway", "Oman", "Pakistan", "Palau",
    "Palestine", "Panama", "Papua New Guinea", "Paraguay", "Peru", "Philippines", "Poland", "Portugal", "Qatar",
    "Romania", "Russia", "Rwanda", "Saint Kitts and Nevis", "Saint Lucia", "Saint Vincent and the Grenadines",
    "Samoa", "San Marino", "São Tomé and Príncipe", "Saudi Arabia", "Senegal", "Serbia", "Seychelles",
    "Sierra Leone", "Singapore", "Slovakia", "Slovenia", "Solomon Islands", "Somalia", "South Africa",
    "South Korea", "South Sudan", "Spain", "Sri Lanka", "Sudan", "Suriname", "Sweden", "Switzerland", "Syria",
    "Tajikistan", "Tanzania", "Thailand", "Timor-Leste", "Togo", "Tonga", "Trinidad and Tobago", "Tunisia",
    "Turkey", "Türkiye", "Turkmenistan", "Tuvalu", "Uganda", "Ukraine", "United Arab Emirates", "United Kingdom",
    "United States", "United States of America", "Uruguay", "Uzbekistan", "Vanuatu", "Vatican City", "Venezuela",
    "Vietnam", "Viet Nam", "Yemen", "Zambia", "Zimbabwe",
    # Other names for the same countries.
    "Britain", "Great Britain", "Burma", "Cape Verde", "Cote d'Ivoire", "Ivory Coast", "Czech Republic",
    "East Timor", "Holland", "Macedonia", "Republic of Korea", "Russian Federation", "Swaziland", "UAE", "UK",
    "U.K.", "USA", "U.S.A.", "U.S.", "DRC",
    # Constituent countries and territories often named as countries.
    "England", "Scotland", "Wales", "Northern Ireland", "Greenland", "Faroe Islands", "Hong Kong", "Macau",
    "Macao", "Puerto Rico", "Taiwan", "Kosovo",
)  # fmt: skip

# Country names that are also first names, and the titles that come before a person's name.
FIRST_NAMES = frozenset({"Chad", "Georgia", "India", "Israel", "Jordan", "Kenya"})
TITLE = re.compile(r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame)\.?\s+$")
_CAPITALISED_WORD = re.compile(r"\s+[A-Z][a-z]")


def _pattern() -> re.Pattern[str]:
    forms = {form for name in NAMES for form in (name, name.upper())}
    alternatives = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    # Whole words: no letter or digit right before or after, nor a hyphen or a dot joining another word
    # ("Austria-Hungary", "example.Finland"); a possessive is fine ("Finland's").
    return re.compile(rf"(?<![\w.'-])(?=[A-Z])(?:{alternatives})(?!\w|[-.]\w)")


COUNTRY = _pattern()


def find_countries(text: str) -> Iterator[Finding]:
    """The country names in ``text``, in order, each a LOCATION."""
    for match in COUNTRY.finditer(text):
        start, end = match.span()
        if _first_name(text, start, end):
            continue
        yield Finding("LOCATION", start, end, SCORE, RECOGNIZER)


def _first_name(text: str, start: int, end: int) -> bool:
    """True where a country name that is also a first name reads as one."""
    if text[start:end] not in FIRST_NAMES:
        return False
    if _CAPITALISED_WORD.match(text, end) is not None:
        return True
    return TITLE.search(text, max(0, start - 8), start) is not None
