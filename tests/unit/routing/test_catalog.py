"""The catalog of providers and vendors (the file's and the stored ones) and the router that follows it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import insert

from bastion.config import ProviderConfig, VendorConfig
from bastion.errors import ConfigError, Conflict, InvalidParameter, NotFound
from bastion.routing import catalog as catalog_module
from bastion.routing.catalog import Catalog, LiveRouting
from bastion.routing.health import MemoryHealth
from bastion.routing.probes import Prober
from bastion.routing.providers import build_provider, check_credentials
from bastion.routing.router import Router
from bastion.store import tables
from bastion.store.changes import open_feed

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from bastion.routing.health import Health
    from bastion.routing.providers.base import Provider
    from bastion.services import Services
    from bastion.store.changes import ChangeFeed

pytestmark = pytest.mark.anyio
ACTOR = "cli:test"
NOW = datetime(2026, 11, 24, tzinfo=UTC)
FILE_PROVIDER = ProviderConfig(name="local", kind="echo", models={"echo-1": "echo-1"})
FILE_VENDOR = VendorConfig.model_validate({"name": "acme", "attestations": [{"type": "dpa", "expires": "2030-01-01"}]})


def provider(name: str, **fields: Any) -> ProviderConfig:
    return ProviderConfig.model_validate({"name": name, "kind": "echo", "models": [f"{name}-model"], **fields})


@pytest.fixture
def services(make_services: Callable[..., Services]) -> Services:
    return make_services()


@pytest.fixture
def feed(services: Services) -> Iterator[ChangeFeed]:
    opened = open_feed(services.engine)
    yield opened
    opened.close()


def catalog_of(services: Services, env: dict[str, str] | None = None) -> Catalog:
    environ = {} if env is None else env
    return Catalog(
        services.engine, (FILE_PROVIDER,), (FILE_VENDOR,), check=lambda spec: check_credentials(spec, environ)
    )


async def live(
    catalog: Catalog, feed: ChangeFeed, env: dict[str, str], prober: Prober | None = None, health: Health | None = None
) -> LiveRouting:
    router = Router((), health=health or MemoryHealth({}))

    def build(spec: ProviderConfig) -> Provider:
        return build_provider(spec, None, env)  # type: ignore[arg-type]  # no request is sent here

    routing = LiveRouting(catalog, feed, router, build, catalog.load(), prober)
    await routing.adopt(catalog.load())
    return routing


def test_stored_entries_follow_the_file_and_never_shadow_it(services: Services) -> None:
    catalog = catalog_of(services)
    catalog.create(ACTOR, provider("extra", vendor="acme"))
    entries = catalog.load()
    assert [p.name for p in entries.providers] == ["local", "extra"]
    assert (entries.source("provider", "local"), entries.source("provider", "extra")) == ("config", "admin")
    with pytest.raises(Conflict, match=r"declared in bastion\.yaml"):
        catalog.create(ACTOR, provider("local"))
    with pytest.raises(Conflict, match=r"declared in bastion\.yaml"):
        catalog.update(ACTOR, FILE_VENDOR)
    with pytest.raises(Conflict, match=r"declared in bastion\.yaml"):
        catalog.delete(ACTOR, "provider", "local")
    with pytest.raises(Conflict, match="already exists"):
        catalog.create(ACTOR, provider("extra"))
    with pytest.raises(NotFound):
        catalog.update(ACTOR, provider("missing"))
    with pytest.raises(NotFound):
        catalog.delete(ACTOR, "vendor", "missing")
    with pytest.raises(InvalidParameter, match="names vendor 'nobody'"):
        catalog.create(ACTOR, provider("orphan", vendor="nobody"))
    assert [p.name for p in catalog.load().providers] == ["local", "extra"]  # nothing refused was kept


def test_a_provider_is_accepted_only_where_its_key_is_set(services: Services) -> None:
    env: dict[str, str] = {}
    catalog = catalog_of(services, env)
    keyed = provider("keyed", kind="openai_compatible", base_url="http://127.0.0.1:9/v1", api_key_env="KEYED_KEY")
    with pytest.raises(InvalidParameter, match=r"\$KEYED_KEY, which is not set") as refused:
        catalog.create(ACTOR, keyed)
    assert refused.value.param == "api_key_env"
    env["KEYED_KEY"] = "sk-keyed"
    assert catalog.create(ACTOR, keyed) == keyed


def test_a_stored_entry_that_no_longer_validates_is_left_out(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    spec = {"name": "future", "kind": "gemini", "models": ["g"]}  # a kind this gateway does not know
    with services.engine.begin() as connection:
        connection.execute(
            insert(tables.routing_entries).values(
                kind="provider", name="future", spec=spec, created_at=NOW, updated_at=NOW
            )
        )
    assert [p.name for p in catalog_of(services).load().providers] == ["local"]
    assert "stored provider 'future' is not valid here" in caplog.text


async def test_the_router_follows_the_catalog_and_keeps_what_did_not_change(
    services: Services, feed: ChangeFeed
) -> None:
    env = {"TWO_KEY": "sk-two"}
    catalog = catalog_of(services, env)
    routing = await live(catalog, feed, env)
    local = routing.router.providers[0]
    await routing.sync()  # nothing changed: nothing reloaded
    assert routing.router.providers == [local]

    catalog.create(ACTOR, provider("two", priority=0, breaker={"failures": 1}))
    await routing.sync()
    assert [p.name for p in routing.router.providers] == ["two", "local"]
    assert routing.router.providers[1] is local  # the same object: its connections and breaker carry on
    assert routing.router.models() == {"echo-1": "local", "two-model": "two"}
    routing.router.record(routing.router.routes("two-model")[0], False, 0.01)  # one failure opens it
    assert routing.router.health.snapshot()["two"]["state"] == "open"

    catalog.delete(ACTOR, "provider", "two")
    await routing.sync()
    assert [p.name for p in routing.router.providers] == ["local"]
    assert "two" not in routing.router.health.snapshot()


async def test_a_provider_whose_key_this_gateway_lacks_is_left_out(
    services: Services, feed: ChangeFeed, caplog: pytest.LogCaptureFixture
) -> None:
    keyed = provider("keyed", kind="openai_compatible", base_url="http://127.0.0.1:9/v1", api_key_env="KEYED_KEY")
    catalog_of(services, {"KEYED_KEY": "sk-keyed"}).create(ACTOR, keyed)  # accepted by a gateway that has it
    routing = await live(catalog_of(services), feed, {})  # this one does not
    assert [p.name for p in routing.router.providers] == ["local"]
    assert "provider 'keyed' is left out on this gateway" in caplog.text
    assert "$KEYED_KEY" in caplog.text


async def test_a_file_provider_without_its_key_stops_the_start(services: Services, feed: ChangeFeed) -> None:
    keyed = ProviderConfig(
        name="file-keyed", kind="openai", base_url="http://127.0.0.1:9/v1", api_key_env="FILE_KEY", models={"m": "m"}
    )
    catalog = Catalog(services.engine, (keyed,))
    with pytest.raises(ConfigError, match=r"\$FILE_KEY"):
        await live(catalog, feed, {})


async def test_probes_follow_the_providers(services: Services, feed: ChangeFeed) -> None:
    catalog = catalog_of(services)
    health = MemoryHealth({})
    prober = Prober(health, {})
    prober.start()
    routing = await live(catalog, feed, {}, prober, health)
    try:
        catalog.create(ACTOR, provider("probed", breaker={"probe_interval": "30s"}))
        await routing.sync()
        assert [task.get_name() for task in prober._tasks] != []
        catalog.update(ACTOR, provider("probed"))
        await routing.sync()
        assert prober._tasks == []
    finally:
        await prober.stop()


def test_two_gateways_creating_one_name_at_once_get_a_conflict_not_an_error(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = catalog_of(services)
    catalog.create(ACTOR, provider("twice"))
    monkeypatch.setattr(catalog_module, "_stored", lambda connection: {})  # the other's insert, not yet seen
    with pytest.raises(Conflict, match="already exists"):
        catalog.create(ACTOR, provider("twice"))
