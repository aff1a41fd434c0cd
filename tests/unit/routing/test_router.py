from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import pytest

from bastion.config import ProviderConfig
from bastion.errors import ModelNotFound, NoEligibleUpstream
from bastion.routing.breaker import Thresholds
from bastion.routing.eligibility import Attestation, Requirement, Vendor, requirement
from bastion.routing.health import MemoryHealth, View
from bastion.routing.providers.echo import EchoProvider
from bastion.routing.router import Router, preference

NOW = datetime(2026, 10, 15, 9, 30, tzinfo=UTC)
ANY = Requirement()
FAST_BREAKER = Thresholds(failures=2, cooldown_ms=10_000, min_requests=100)


def echo(name: str, priority: int, models: dict[str, str]) -> EchoProvider:
    return EchoProvider(ProviderConfig(name=name, kind="echo", priority=priority, models=models))


def upstream(name: str, priority: int = 100, weight: int = 1, **extra: Any) -> EchoProvider:
    """A provider as the router sees it: only its name and config matter here."""
    config = {"kind": "openai", "base_url": "https://upstream.example/v1", "models": {"m": f"m-{name}"}} | extra
    return EchoProvider(ProviderConfig(name=name, priority=priority, weight=weight, **config))


def test_lowest_priority_number_wins_and_models_map_to_upstream_names() -> None:
    router = Router([echo("b", 2, {"m": "m-b"}), echo("a", 1, {"m": "m-a", "only-a": "x"})])
    route = router.routes("m")[0]
    assert (route.provider.name, route.upstream_model) == ("a", "m-a")
    assert router.models() == {"m": "a", "only-a": "a"}


def test_unknown_model_is_refused_with_a_pointer_to_the_model_list() -> None:
    with pytest.raises(ModelNotFound, match="GET /v1/models") as caught:
        Router([echo("a", 1, {"m": "m"})]).routes("gpt-9")
    assert caught.value.param == "model"
    assert caught.value.status == 404


@pytest.mark.anyio
async def test_plan_refuses_an_unknown_model_too() -> None:
    with pytest.raises(ModelNotFound):
        await Router([echo("a", 1, {"m": "m"})]).plan("gpt-9", ANY, project="p")


def router(*providers: EchoProvider, seed: int = 7, clock: list[float] | None = None, **kwargs: Any) -> Router:
    now = clock or [NOW.timestamp()]
    health = MemoryHealth({p.name: FAST_BREAKER for p in providers}, clock=lambda: now[0])
    return Router(providers, health=health, clock=lambda: NOW, rng=random.Random(seed), **kwargs)


@pytest.mark.anyio
async def test_plan_orders_by_priority_and_maps_each_route_to_its_upstream_model() -> None:
    plan = await router(upstream("c", 3), upstream("a", 1), upstream("b", 2)).plan("m", ANY, project="p")
    assert [(r.provider.name, r.upstream_model) for r in plan.routes] == [("a", "m-a"), ("b", "m-b"), ("c", "m-c")]
    assert plan.model == "m"


async def first_choices(subject: Router, runs: int = 4000) -> Counter[str]:
    return Counter([(await subject.plan("m", ANY, project="p")).routes[0].provider.name for _ in range(runs)])


@pytest.mark.anyio
async def test_within_a_priority_first_choices_follow_the_weights() -> None:
    counts = await first_choices(router(upstream("heavy", weight=3), upstream("light", weight=1)))
    assert 0.72 < counts["heavy"] / 4000 < 0.78


@pytest.mark.anyio
async def test_faster_endpoints_and_ones_without_recent_failures_are_preferred() -> None:
    subject = router(upstream("fast"), upstream("slow"), upstream("flaky"))
    for name, seconds in [("fast", 0.1), ("slow", 0.2), ("flaky", 0.1)]:
        subject.health.record(name, True, seconds)
    subject.health.record("flaky", False, 0.0)
    counts = await first_choices(subject)
    # weights fast 1, slow 0.5 (half as fast), flaky 0.5 (one failure in a row): 50% / 25% / 25%
    assert 0.47 < counts["fast"] / 4000 < 0.53
    assert 0.22 < counts["slow"] / 4000 < 0.28


def test_preference_scales_weight_by_speed_and_failures() -> None:
    routes = [r for p in (upstream("a", weight=4), upstream("b"), upstream("new")) for r in Router([p]).routes("m")]
    views = {
        "a": View("closed", True, 1, 300.0),
        "b": View("closed", True, 0, 100.0),
        "new": View("closed", True, 0, None),
    }
    assert preference(routes, views) == pytest.approx([4 / 3 / 2, 1.0, 1.0])


@pytest.mark.anyio
async def test_an_open_circuit_is_skipped_and_a_due_probe_goes_first_in_its_priority() -> None:
    now = [NOW.timestamp()]
    subject = router(upstream("primary", 1), upstream("other", 1), upstream("backup", 2), clock=now)
    for _ in range(2):
        subject.health.record("primary", False, 0.1)
    plan = await subject.plan("m", ANY, project="p")
    assert [r.provider.name for r in plan.routes] == ["other", "backup"]
    assert plan.reasoning["excluded"] == [{"provider": "primary", "rules": ["circuit"], "circuit": "open"}]

    now[0] += 10
    plan = await subject.plan("m", ANY, project="p")
    assert [r.provider.name for r in plan.routes] == ["primary", "other", "backup"]
    assert await subject.admit(plan.routes[0])  # the probe slot: this request's
    assert not await subject.admit(plan.routes[0])  # nobody else's
    assert [r.provider.name for r in (await subject.plan("m", ANY, project="p")).routes] == ["other", "backup"]
    subject.record(plan.routes[0], True, 0.05)
    assert len((await subject.plan("m", ANY, project="p")).routes) == 3


@pytest.mark.anyio
async def test_when_every_eligible_circuit_is_open_the_request_is_refused() -> None:
    subject = router(upstream("a", residency="eu"), upstream("b", residency="us"))
    for _ in range(2):
        subject.record(subject.routes("m")[0], False, 0.1)
    with pytest.raises(NoEligibleUpstream) as caught:
        await subject.plan("m", requirement(["eu"], {}, "public", []), project="p")
    assert caught.value.message == (
        "No provider may take this request for model 'm' (no healthy provider in residency eu): "
        "project 'p' allows residency eu; a is unhealthy (circuit open); b is in residency us."
    )


VENDORS = {
    "acme": Vendor("acme", (Attestation("zdr", date(2027, 1, 1)), Attestation("baa", date(2026, 10, 15)))),
    "other": Vendor("other", (Attestation("zdr", date(2027, 1, 1)),)),
}


@pytest.mark.anyio
async def test_only_providers_that_may_take_the_data_are_planned_and_the_reasoning_says_why() -> None:
    subject = router(
        upstream("acme-eu", 1, vendor="acme", residency="eu", region="westeurope"),
        upstream("other-eu", 1, vendor="other", residency="eu"),
        upstream("acme-us", 1, vendor="acme", residency="us"),
        vendors=VENDORS,
    )
    need = requirement(["eu"], {"phi": ["baa"]}, "internal", ["phi"])
    plan = await subject.plan("m", need, project="p")
    assert [r.provider.name for r in plan.routes] == ["acme-eu"]
    assert plan.reasoning == {
        "requirement": need.to_json(),
        "eligible": [{"provider": "acme-eu", "region": "westeurope", "residency": "eu"}],
        "excluded": [
            {"provider": "other-eu", "rules": ["attestation"], "lacks": [{"type": "baa", "expired": None}]},
            {"provider": "acme-us", "rules": ["residency"], "residency": "us"},
        ],
    }


@pytest.mark.anyio
async def test_an_attestation_stops_counting_the_day_after_it_expires() -> None:
    provider = upstream("acme-eu", vendor="acme", residency="eu")
    need = requirement(None, {"phi": ["baa"]}, "public", ["phi"])
    today = Router([provider], vendors=VENDORS, clock=lambda: NOW)
    assert len((await today.plan("m", need, project="p")).routes) == 1
    tomorrow = Router([provider], vendors=VENDORS, clock=lambda: datetime(2026, 10, 16, 0, 0, tzinfo=UTC))
    with pytest.raises(NoEligibleUpstream, match=r"acme-eu lacks baa \(expired 2026-10-15\)"):
        await tomorrow.plan("m", need, project="p")


@pytest.mark.anyio
async def test_without_vendors_no_attestation_is_held() -> None:
    need = requirement(None, {"regulated": ["zdr"]}, "regulated", [])
    with pytest.raises(NoEligibleUpstream, match="no provider holds zdr"):
        await Router([upstream("a", vendor="acme")]).plan("m", need, project="p")
