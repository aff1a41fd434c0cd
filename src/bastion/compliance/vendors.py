"""The vendor register: each vendor's attestations with their expiry and evidence, and the providers behind
each vendor with where they keep data.

An attestation counts up to and including its expiry date; one that has lapsed or lapses within
:data:`~bastion.routing.eligibility.EXPIRY_NOTICE` (30 days) is flagged, because the providers that need it
leave the eligible set for the data that requires it on the day after it expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bastion.compliance.report import Fact, Section
from bastion.compliance.source import finish
from bastion.routing.eligibility import EXPIRY_NOTICE

if TYPE_CHECKING:
    from datetime import date

    from bastion.compliance.report import Query, Report
    from bastion.compliance.source import Source


@dataclass(frozen=True)
class AttestationRow:
    vendor: str
    type: str
    expires: date
    days_left: int
    status: str  # valid | expiring | expired | superseded
    document: str | None
    sha256: str | None


@dataclass(frozen=True)
class ProviderRow:
    provider: str
    kind: str
    vendor: str | None
    residency: str | None
    region: str | None
    holds: str  # the attestation types that count today, comma-separated


def _status(expires: date, latest: date, today: date) -> str:
    if expires < latest:
        return "superseded"
    if expires < today:
        return "expired"
    return "expiring" if (expires - today) <= EXPIRY_NOTICE else "valid"


def build(source: Source, query: Query) -> Report:
    """The register as of today (the period does not apply: contracts are listed as they stand)."""
    today = source.now().date()
    rows: list[AttestationRow] = []
    for vendor in source.vendors:
        latest: dict[str, date] = {}
        for item in vendor.attestations:
            latest[item.type] = max(item.expires, latest.get(item.type, item.expires))
        for item in sorted(vendor.attestations, key=lambda a: (a.type, a.expires)):
            evidence = item.evidence
            rows.append(
                AttestationRow(
                    vendor=vendor.name,
                    type=item.type,
                    expires=item.expires,
                    days_left=(item.expires - today).days,
                    status=_status(item.expires, latest[item.type], today),
                    document=evidence.document if evidence else None,
                    sha256=evidence.sha256 if evidence else None,
                )
            )
    held = {
        vendor.name: sorted({a.type for a in vendor.attestations if a.expires >= today}) for vendor in source.vendors
    }
    providers = [
        ProviderRow(
            provider=p.name,
            kind=p.kind,
            vendor=p.vendor,
            residency=p.residence,
            region=p.region,
            holds=", ".join(held.get(p.vendor or "", [])),
        )
        for p in source.providers
    ]
    counts = {status: sum(row.status == status for row in rows) for status in ("valid", "expiring", "expired")}
    summary = [
        Fact("vendors", len(source.vendors)),
        Fact("attestations", len(rows)),
        *(Fact(status, count) for status, count in counts.items()),
        Fact("providers_without_vendor", sum(p.vendor is None for p in providers)),
    ]
    notes = (
        f"'expiring': lapses within {EXPIRY_NOTICE.days} days. An attestation counts up to and including its "
        "expiry date; after it, providers of that vendor are no longer eligible for data that requires it.",
        "Evidence is named by document and SHA-256; compare the hash with the file you hold.",
    )
    sections = [
        Section.of("attestations", "Attestations", AttestationRow, rows, notes=notes),
        Section.of("providers", "Providers", ProviderRow, providers),
    ]
    return finish(source, query, "vendors", "Vendor register", summary, sections, cites=False)
