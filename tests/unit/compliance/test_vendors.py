"""The vendor register: every attestation with its status as of today, and what each provider holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.unit.compliance.activity import NOW, query

from bastion.compliance import registry
from bastion.compliance.source import Source
from bastion.config import FileConfig, ProviderConfig, VendorConfig

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.services import Services

SHA = "ab" * 32
FILE = {
    "vendors": [
        {
            "name": "microsoft-azure",
            "attestations": [
                {"type": "baa", "expires": "2027-06-30", "evidence": {"document": "azure-baa.pdf", "sha256": SHA}},
                {"type": "zdr", "expires": "2026-12-10"},  # within 30 days of NOW (2026-11-26)
                {"type": "dpa", "expires": "2026-11-01"},  # lapsed
                {"type": "soc2_type2", "expires": "2026-05-01"},
                {"type": "soc2_type2", "expires": "2027-05-01"},  # the renewal supersedes the one above
            ],
        }
    ],
    "providers": [
        {
            "name": "azure-eu",
            "kind": "echo",
            "vendor": "microsoft-azure",
            "residency": "eu",
            "region": "westeurope",
            "models": ["echo-1"],
        },
        {"name": "local", "kind": "echo", "models": ["echo-2"]},
    ],
}


def test_attestations_are_listed_with_their_status_and_evidence(
    activity_services: Callable[[], Services],
) -> None:
    source = Source.of(activity_services(), FileConfig.model_validate(FILE), clock=lambda: NOW)
    report = registry.build("vendors", source, query())
    attestations, providers = (section.records() for section in report.sections)
    status = {(row["type"], str(row["expires"])): row["status"] for row in attestations}
    assert status == {
        ("baa", "2027-06-30"): "valid",
        ("dpa", "2026-11-01"): "expired",
        ("soc2_type2", "2026-05-01"): "superseded",
        ("soc2_type2", "2027-05-01"): "valid",
        ("zdr", "2026-12-10"): "expiring",
    }
    baa = next(row for row in attestations if row["type"] == "baa")
    assert (baa["document"], baa["sha256"], baa["days_left"]) == ("azure-baa.pdf", SHA, 216)
    assert providers == [
        {
            "provider": "azure-eu",
            "kind": "echo",
            "vendor": "microsoft-azure",
            "residency": "eu",
            "region": "westeurope",
            "holds": "baa, soc2_type2, zdr",
        },
        {"provider": "local", "kind": "echo", "vendor": None, "residency": "local", "region": None, "holds": ""},
    ]
    summary = {fact.item: fact.value for fact in report.summary}
    assert (summary["expired"], summary["expiring"], summary["providers_without_vendor"]) == (1, 1, 1)


def test_vendors_and_providers_added_over_the_admin_api_are_in_the_register(
    activity_services: Callable[[], Services],
) -> None:
    services = activity_services()
    source = Source.of(services, FileConfig.model_validate(FILE), clock=lambda: NOW)
    vendor = {"name": "nordic-ai", "attestations": [{"type": "dpa", "expires": "2027-01-31"}]}
    source.catalog.create("member:olive@acme.com", VendorConfig.model_validate(vendor))
    provider = {"name": "nordic", "kind": "echo", "vendor": "nordic-ai", "residency": "eu", "models": ["echo-3"]}
    source.catalog.create("member:olive@acme.com", ProviderConfig.model_validate(provider))
    attestations, providers = (section.records() for section in registry.build("vendors", source, query()).sections)
    assert ("nordic-ai", "dpa", "valid") in {(row["vendor"], row["type"], row["status"]) for row in attestations}
    assert {"provider": "nordic", "vendor": "nordic-ai", "holds": "dpa"}.items() <= providers[-1].items()
