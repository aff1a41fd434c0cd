from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.config import AttestationConfig, ProviderConfig, VendorConfig
from bastion.errors import NoEligibleUpstream
from bastion.policy.data import CLASSES, TAGS
from bastion.routing.eligibility import (
    Attestation,
    Expiry,
    Vendor,
    eligibility,
    expiring,
    requirement,
    vendors_from,
)

TODAY = date(2026, 10, 15)


def provider(name: str, residency: str | None = None, vendor: str | None = None, **extra: Any) -> ProviderConfig:
    kind = extra.pop("kind", "openai")
    base = {"base_url": "https://upstream.example/v1"} if kind != "echo" else {}
    return ProviderConfig(name=name, kind=kind, residency=residency, vendor=vendor, models=["gpt-4.1"], **base, **extra)


def vendor(name: str, **attestations: date) -> Vendor:
    return Vendor(name, tuple(Attestation(kind, expires) for kind, expires in attestations.items()))


def test_vendors_from_config_keep_every_attestation() -> None:
    configs = [
        VendorConfig(
            name="openai",
            attestations=[
                AttestationConfig(type="zdr", expires=date(2027, 1, 1)),
                AttestationConfig(type="dpa", expires=date(2026, 10, 1), evidence={"document": "dpa.pdf"}),
            ],
        ),
        VendorConfig(name="nobody"),
    ]
    assert vendors_from(configs) == {
        "openai": Vendor("openai", (Attestation("zdr", date(2027, 1, 1)), Attestation("dpa", date(2026, 10, 1)))),
        "nobody": Vendor("nobody"),
    }


@pytest.mark.parametrize(
    ("expires", "today", "held"),
    [
        (TODAY, TODAY, True),  # valid up to and including its expiry date
        (TODAY, TODAY + timedelta(days=1), False),
        (TODAY + timedelta(days=400), TODAY, True),
    ],
)
def test_an_attestation_counts_up_to_and_including_its_expiry(expires: date, today: date, held: bool) -> None:
    assert vendor("v", baa=expires).holds("baa", today) is held
    assert vendor("v", baa=expires).holds("dpa", today) is False


def test_a_renewal_keeps_the_attestation_held_and_silences_the_expiry_notice() -> None:
    renewed = Vendor("v", (Attestation("dpa", TODAY - timedelta(days=3)), Attestation("dpa", date(2027, 12, 31))))
    assert renewed.holds("dpa", TODAY)
    assert renewed.expiring(TODAY) == []


@pytest.mark.parametrize(
    ("days", "listed", "expired"),
    [(-40, True, True), (-1, True, True), (0, True, False), (30, True, False), (31, False, False)],
)
def test_expiring_lists_what_lapsed_or_lapses_within_thirty_days(days: int, listed: bool, expired: bool) -> None:
    found = vendor("acme", zdr=TODAY + timedelta(days=days)).expiring(TODAY)
    assert found == ([Expiry("acme", "zdr", TODAY + timedelta(days=days), days, expired)] if listed else [])


def test_expiring_across_vendors_is_soonest_first_and_takes_a_notice_period() -> None:
    vendors = [
        vendor("b", dpa=TODAY + timedelta(days=50), zdr=TODAY - timedelta(days=2)),
        vendor("a", baa=TODAY + timedelta(days=5)),
    ]
    assert [(e.vendor, e.type, e.days_left) for e in expiring(vendors, TODAY)] == [("b", "zdr", -2), ("a", "baa", 5)]
    assert [e.type for e in expiring(vendors, TODAY, within=timedelta(days=60))] == ["zdr", "baa", "dpa"]
    assert expiring(vendors, TODAY)[0].to_json() == {
        "vendor": "b",
        "type": "zdr",
        "expires": "2026-10-13",
        "days_left": -2,
        "expired": True,
    }


REQUIRE = {"confidential": ["dpa"], "regulated": ["zdr", "dpa"], "phi": ["baa"], "pci": ["pci_dss"]}


@pytest.mark.parametrize(
    ("data_class", "tags", "attestations", "because"),
    [
        ("public", (), (), {}),
        ("internal", ("pii",), (), {}),
        ("confidential", (), ("dpa",), {"dpa": ("confidential",)}),
        ("regulated", ("pii",), ("zdr", "dpa"), {"zdr": ("regulated",), "dpa": ("regulated", "confidential")}),
        ("internal", ("phi",), ("baa",), {"baa": ("phi",)}),
        ("regulated", ("pci", "phi"), ("zdr", "dpa", "pci_dss", "baa"), None),
    ],
)
def test_a_class_requirement_binds_every_higher_class_and_tags_add_theirs(
    data_class: str, tags: tuple[str, ...], attestations: tuple[str, ...], because: dict[str, Any] | None
) -> None:
    found = requirement(["eu"], REQUIRE, data_class, tags)
    assert found.attestations == attestations
    assert (found.residencies, found.data_class, found.tags) == (("eu",), data_class, tags)
    if because is not None:
        assert dict(found.because) == because


def test_no_project_residency_allows_any_and_the_requirement_is_json() -> None:
    found = requirement(None, REQUIRE, "regulated", ["pii", "pii"])
    assert found.residencies is None
    assert found.to_json() == {
        "residency": None,
        "attestations": ["zdr", "dpa"],
        "class": "regulated",
        "tags": ["pii"],
        "because": {"zdr": ["regulated"], "dpa": ["regulated", "confidential"]},
    }


VENDORS = {
    "microsoft": vendor("microsoft", zdr=date(2027, 6, 30), dpa=date(2027, 6, 30), baa=date(2027, 6, 30)),
    "openai": vendor("openai", zdr=date(2027, 6, 30), dpa=date(2026, 10, 1)),
}


def test_the_refusal_names_the_rule_that_excluded_each_provider() -> None:
    providers = [
        provider("azure-us", "us", "microsoft"),
        provider("openai-eu", "eu", "openai"),
        provider("azure-eu", "eu", "microsoft"),
    ]
    need = requirement(["eu"], REQUIRE, "regulated", ["pii"])
    result = eligibility(providers, need, VENDORS, TODAY, circuits={"azure-eu": "open"})
    assert result.eligible == ()
    assert result.summary() == "no healthy provider in residency eu holds zdr, dpa"
    refusal = result.refusal("gpt-4.1", "p")
    assert isinstance(refusal, NoEligibleUpstream)
    assert (refusal.status, refusal.code) == (503, "no_eligible_upstream")
    assert refusal.message == (
        "No provider may take this request for model 'gpt-4.1' (no healthy provider in residency eu holds zdr, dpa): "
        "project 'p' allows residency eu and the data (regulated; pii) requires zdr, dpa; "
        "azure-us is in residency us; openai-eu lacks dpa (expired 2026-10-01); azure-eu is unhealthy (circuit open)."
    )


def test_the_eligible_keep_their_order_and_the_reasoning_is_json() -> None:
    providers = [
        provider("azure-eu", "eu", "microsoft"),
        provider("anon-eu", "eu"),
        provider("openai-eu", "eu", "openai"),
        provider("azure-eu2", "eu", "microsoft"),
    ]
    result = eligibility(providers, requirement(["eu"], REQUIRE, "internal", ["phi"]), VENDORS, TODAY)
    assert [p.name for p in result.eligible] == ["azure-eu", "azure-eu2"]
    assert result.to_json() == {
        "requirement": {"residency": ["eu"], "attestations": ["baa"], "class": "internal", "tags": ["phi"]}
        | {"because": {"baa": ["phi"]}},
        "eligible": ["azure-eu", "azure-eu2"],
        "excluded": [
            {"provider": "anon-eu", "rules": ["attestation"], "lacks": [{"type": "baa", "expired": None}]},
            {"provider": "openai-eu", "rules": ["attestation"], "lacks": [{"type": "baa", "expired": None}]},
        ],
    }


@pytest.mark.parametrize(
    ("residency", "residence", "kind", "eligible", "clause"),
    [
        (None, None, "openai", True, None),  # no restriction: an unknown residence is fine
        (["eu"], None, "openai", False, "p1 has no declared residency"),
        (["eu"], None, "echo", False, "p1 is in residency local"),  # the echo model keeps data here
        (["eu", "local"], None, "echo", True, None),
        (["eu", "uk"], "uk", "openai", True, None),
        ([], "eu", "openai", False, "p1 is in residency eu"),  # an empty list allows nowhere
    ],
)
def test_residency(
    residency: list[str] | None, residence: str | None, kind: str, eligible: bool, clause: str | None
) -> None:
    result = eligibility([provider("p1", residence, kind=kind)], requirement(residency, {}, "public", []), {}, TODAY)
    assert bool(result.eligible) is eligible
    assert [e.clause() for e in result.excluded] == ([clause] if clause else [])


def test_a_provider_without_a_vendor_holds_no_attestation_and_both_faults_are_named() -> None:
    need = requirement(["eu"], REQUIRE, "internal", ["phi"])
    result = eligibility([provider("local-llm", "us")], need, VENDORS, TODAY)
    assert [e.clause() for e in result.excluded] == ["local-llm is in residency us and lacks baa"]
    assert result.excluded[0].rules() == ["residency", "attestation"]


@pytest.mark.parametrize(
    ("residency", "data_class", "circuits", "summary", "required"),
    [
        (None, "public", {"a": "open"}, "no healthy provider is available", None),
        (None, "public", {"a": "half_open"}, "no healthy provider is available", None),
        (["eu", "uk"], "public", {}, "no provider in residency eu or uk", "project 'p' allows residency eu and uk"),
        ([], "public", {}, "no provider in an allowed residency", "project 'p' allows no residency"),
        (
            None,
            "regulated",
            {},
            "no provider holds zdr, dpa",
            "project 'p' requires zdr, dpa for this data (regulated)",
        ),
    ],
)
def test_summaries_and_requirement_clauses(
    residency: list[str] | None, data_class: str, circuits: dict[str, str], summary: str, required: str | None
) -> None:
    result = eligibility([provider("a", "us")], requirement(residency, REQUIRE, data_class, []), {}, TODAY, circuits)
    assert result.summary() == summary
    clauses = f"{required}; " if required else ""
    assert result.message("m", "p").startswith(
        f"No provider may take this request for model 'm' ({summary}): {clauses}a "
    )


def test_a_circuit_whose_probe_is_in_flight_is_named_as_such() -> None:
    result = eligibility([provider("a")], requirement(None, {}, "public", []), {}, TODAY, {"a": "half_open"})
    assert result.message("m", "p").endswith(": a is unhealthy (circuit half-open, its probe is in flight).")


def test_a_circuit_only_matters_for_a_provider_that_may_take_the_data() -> None:
    need = requirement(["eu"], {}, "public", [])
    result = eligibility([provider("us", "us"), provider("eu", "eu")], need, {}, TODAY, {"us": "open"})
    assert [e.to_json() for e in result.excluded] == [{"provider": "us", "rules": ["residency"], "residency": "us"}]
    assert [p.name for p in result.eligible] == ["eu"]


RESIDENCIES = st.sampled_from(["eu", "us", "uk", "local"])
KINDS = st.sampled_from(["zdr", "dpa", "baa", "soc2_type2"])
DATES = st.dates(min_value=TODAY - timedelta(days=60), max_value=TODAY + timedelta(days=60))
PROVIDERS = st.lists(
    st.tuples(st.none() | RESIDENCIES, st.none() | st.sampled_from(["v1", "v2", "v3", "undeclared"])), max_size=8
)
VENDOR_SETS = st.dictionaries(
    st.sampled_from(["v1", "v2", "v3"]), st.lists(st.tuples(KINDS, DATES), max_size=5), max_size=3
)


@given(
    providers=PROVIDERS,
    vendors=VENDOR_SETS,
    residency=st.none() | st.lists(RESIDENCIES, max_size=3, unique=True),
    require=st.dictionaries(st.sampled_from([*CLASSES, *TAGS]), st.lists(KINDS, max_size=3), max_size=4),
    data_class=st.sampled_from(CLASSES),
    tags=st.lists(st.sampled_from(TAGS), max_size=3),
    open_circuits=st.sets(st.integers(min_value=0, max_value=7)),
)
def test_eligible_providers_satisfy_every_rule_and_each_excluded_one_breaks_one(
    providers: list[tuple[str | None, str | None]],
    vendors: dict[str, list[tuple[str, date]]],
    residency: list[str] | None,
    require: dict[str, list[str]],
    data_class: str,
    tags: list[str],
    open_circuits: set[int],
) -> None:
    configs = [provider(f"p{i}", where, who) for i, (where, who) in enumerate(providers)]
    known = {name: Vendor(name, tuple(Attestation(k, d) for k, d in held)) for name, held in vendors.items()}
    need = requirement(residency, require, data_class, tags)
    circuits = {f"p{i}": "open" for i in open_circuits}
    result = eligibility(configs, need, known, TODAY, circuits)

    def holds(config: ProviderConfig, kind: str) -> bool:
        held = vendors.get(config.vendor or "", [])
        return any(k == kind and expires >= TODAY for k, expires in held)

    def complies(config: ProviderConfig) -> bool:
        placed = residency is None or config.residency in residency
        return placed and all(holds(config, kind) for kind in need.attestations)

    level = CLASSES.index(data_class)
    assert set(need.attestations) == {k for rule in [*CLASSES[: level + 1], *tags] for k in require.get(rule, [])}
    assert [c.name for c in result.eligible] == [c.name for c in configs if complies(c) and c.name not in circuits]
    assert {e.provider for e in result.excluded} == {c.name for c in configs} - {c.name for c in result.eligible}
    for exclusion in result.excluded:
        assert exclusion.rules()
        assert exclusion.provider in exclusion.clause()
    if not result.eligible and configs:
        assert result.summary() in result.message("m", "p")
