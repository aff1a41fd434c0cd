"""National identifiers, validated by ``python-stdnum`` (the UK NINO by HMRC's prefix rules, which it lacks).

Identifiers whose check digit a random number passes often (US SSN without separators, DE tax ID, NL BSN,
Aadhaar) start below the minimum score and need a context word such as "ssn", "steuer-id" or "bsn".
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.in_ import aadhaar
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.us import ssn

from bastion.protect.detect.recognizer import Recognizer, runs_on

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

SSN = r"\b\d{3}[ .\-]?\d{2}[ .\-]?\d{4}\b"
NINO = r"\b[A-Za-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-Da-d]\b"
DE_TAX_ID = r"\b\d(?:[ /.\-]?\d){10}\b"
FR_NIR = r"\b[1-478][ .]?\d{2}[ .]?\d{2}[ .]?(?:\d{2}|2[ABab])[ .]?\d{3}[ .]?\d{3}[ .]?\d{2}\b"
ES_NIF = r"\b\d{8}[ \-]?[A-Za-z]\b"
ES_NIE = r"\b[XYZxyz][ \-]?\d{7}[ \-]?[A-Za-z]\b"
_OMOCODE = "[0-9LMNPQRSTUVlmnpqrstuv]"  # digits of a codice fiscale may be swapped for these letters
IT_FISCAL_CODE = (
    rf"\b[A-Za-z]{{6}}{_OMOCODE}{{2}}[A-EHLMPR-Ta-ehlmpr-t]{_OMOCODE}{{2}}[A-Za-z]{_OMOCODE}{{3}}[A-Za-z]\b"
)
NL_BSN = r"\b\d(?:[ .\-]?\d){8}\b"
IN_AADHAAR = r"\b[2-9]\d{3}[ \-]?\d{4}[ \-]?\d{4}\b"

_SEPARATORS = re.compile(r"[ .\-]")
_NINO_FIRST = frozenset("ABCEGHJKLMNOPRSTWXYZ")
_NINO_SECOND = frozenset("ABCEGHJKLMNPRSTWXYZ")
_NINO_UNUSED = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def stdnum_score(module: ModuleType, score: float) -> Callable[[str], float | None]:
    """A validator giving ``score`` to what ``module.is_valid`` accepts (stdnum strips spaces and dashes)."""

    def validate(value: str) -> float | None:
        return score if module.is_valid(value) else None

    return validate


def ssn_score(value: str) -> float | None:
    """Area not 000, 666 or 9xx, group not 00, serial not 0000, not a known advertised number (078-05-1120),
    and the same separator twice: 0.6 with dashes, 0.5 with spaces or dots, 0.3 as bare digits."""
    separators = _SEPARATORS.findall(value)
    if separators and (len(separators) != 2 or separators[0] != separators[1]):
        return None
    digits = "".join(char for char in value if char.isdigit())
    if len(set(digits)) == 1 or not ssn.is_valid(digits):
        return None
    if not separators:
        return 0.3
    return 0.6 if separators[0] == "-" else 0.5


def nino_score(value: str) -> float | None:
    """0.6 for a National Insurance number with a prefix HMRC issues (not D, F, I, Q, U, V first; not BG, GB...)."""
    compact = value.replace(" ", "").upper()
    prefix = compact[:2]
    if prefix[0] not in _NINO_FIRST or prefix[1] not in _NINO_SECOND or prefix in _NINO_UNUSED:
        return None
    return 0.6


RECOGNIZERS = (
    Recognizer(
        name="us_ssn",
        entity="US_SSN",
        patterns=(SSN,),
        validate=ssn_score,
        context=("ssn", "social security", "social sec", "ss", "ss#", "ssa", "taxpayer"),
        glue=runs_on(spaced=1),
        ceiling=0.6,
    ),
    Recognizer(
        name="uk_nino",
        entity="UK_NINO",
        patterns=(NINO,),
        validate=nino_score,
        context=("national insurance", "nino", "ni number", "ni no", "nin", "insurance number"),
        ceiling=0.6,
    ),
    Recognizer(
        name="de_tax_id",
        entity="DE_TAX_ID",
        patterns=(DE_TAX_ID,),
        validate=stdnum_score(idnr, 0.4),
        context=(
            *("steuer", "steuer-id", "steuerid", "steuernummer", "idnr", "identifikationsnummer", "tax id", "tin"),
            *("steueridentifikationsnummer", "steuer-identifikationsnummer", "tax identification"),
        ),
        glue=runs_on(),
        ceiling=0.4,
    ),
    Recognizer(
        name="fr_nir",
        entity="FR_NIR",
        patterns=(FR_NIR,),
        validate=stdnum_score(nir, 0.7),
        context=("nir", "insee", "sécurité sociale", "securite sociale", "sécu", "secu", "social security"),
        glue=runs_on(spaced=1),
        ceiling=0.7,
    ),
    Recognizer(
        name="es_dni",
        entity="ES_NIF",
        patterns=(ES_NIF,),
        validate=stdnum_score(dni, 0.6),
        context=("dni", "nif", "documento nacional", "identidad"),
        glue=runs_on(),
        ceiling=0.6,
    ),
    Recognizer(
        name="es_nie",
        entity="ES_NIE",
        patterns=(ES_NIE,),
        validate=stdnum_score(nie, 0.7),
        context=("nie", "extranjero", "extranjería", "extranjeria"),
        glue=runs_on(),
        ceiling=0.7,
    ),
    Recognizer(
        name="it_fiscal_code",
        entity="IT_FISCAL_CODE",
        patterns=(IT_FISCAL_CODE,),
        validate=stdnum_score(codicefiscale, 0.9),
        context=("codice fiscale", "cf", "fiscal code", "tax code"),
        ceiling=0.9,
    ),
    Recognizer(
        name="nl_bsn",
        entity="NL_BSN",
        patterns=(NL_BSN,),
        validate=stdnum_score(bsn, 0.3),
        context=("bsn", "burgerservicenummer", "sofinummer", "sofi", "citizen service number"),
        glue=runs_on(),
        ceiling=0.3,
    ),
    Recognizer(
        name="in_aadhaar",
        entity="IN_AADHAAR",
        patterns=(IN_AADHAAR,),
        validate=stdnum_score(aadhaar, 0.4),
        context=("aadhaar", "aadhar", "adhaar", "uidai", "uid"),
        glue=runs_on(),
        ceiling=0.4,
    ),
)
