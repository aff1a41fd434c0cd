"""The built-in recognisers, one module per family, gathered into one table the engine compiles."""

from __future__ import annotations

from bastion.protect.detect.recognizers import contact, credentials, dates, financial, national, secrets

ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN_CODE",
    "IP_ADDRESS",
    "US_BANK_ROUTING",
    "UK_NINO",
    "DE_TAX_ID",
    "FR_NIR",
    "ES_NIF",
    "ES_NIE",
    "IT_FISCAL_CODE",
    "NL_BSN",
    "IN_AADHAAR",
    "DATE_OF_BIRTH",
    "SECRET",
)

RECOGNIZERS = (
    *contact.RECOGNIZERS,
    *financial.RECOGNIZERS,
    *national.RECOGNIZERS,
    *dates.RECOGNIZERS,
    *secrets.RECOGNIZERS,
    *credentials.RECOGNIZERS,
)
