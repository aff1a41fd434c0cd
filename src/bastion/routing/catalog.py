"""The providers and vendors a gateway routes by: those ``bastion.yaml`` declares and those added over the
admin API.

The file's entries are fixed while a gateway runs (change the file, then restart). Entries made over the
admin API are stored, validated by the same specs as the file's, recorded as admin events (so in the
audit log), and picked up by every replica on its next request through the change feed's ``routing``
revision. Names are one namespace per kind: the API neither shadows nor changes an entry of the file.

A stored provider names its key by environment variable, like the file's; the replica that accepts it
must have the variable set, and a replica that lacks it leaves that provider out (and logs why) rather
than sending requests without credentials.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bastion.config import ProviderConfig, VendorConfig
from bastion.errors import BastionError, Conflict, InvalidParameter, NotFound
from bastion.identity import events
from bastion.routing.eligibility import vendors_from
from bastion.routing.health import thresholds_from
from bastion.routing.probes import probes_for
from bastion.store import changes, tables

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sqlalchemy import Connection, Engine

    from bastion.routing.probes import Prober
    from bastion.routing.providers.base import Provider
    from bastion.routing.router import Router
    from bastion.store.changes import ChangeFeed

log = logging.getLogger(__name__)

REVISION = "routing"
Kind = Literal["provider", "vendor"]
Source = Literal["config", "admin"]
Spec = ProviderConfig | VendorConfig
_SPECS: dict[Kind, type[Spec]] = {"provider": ProviderConfig, "vendor": VendorConfig}
_PLURAL: dict[Kind, str] = {"provider": "providers", "vendor": "vendors"}


@dataclass(frozen=True, slots=True)
class Entries:
    """Every provider and vendor, the file's first, and which of them the admin API added."""

    providers: tuple[ProviderConfig, ...]
    vendors: tuple[VendorConfig, ...]
    stored: frozenset[tuple[Kind, str]] = frozenset()

    def source(self, kind: Kind, name: str) -> Source:
        return "admin" if (kind, name) in self.stored else "config"

    def find(self, kind: Kind, name: str) -> Spec:
        """The entry of ``kind`` named ``name``; :class:`NotFound` naming the listing when there is none."""
        entries: tuple[Spec, ...] = self.providers if kind == "provider" else self.vendors
        for spec in entries:
            if spec.name == name:
                return spec
        raise _missing(kind, name)


class Catalog:
    def __init__(
        self,
        engine: Engine,
        providers: tuple[ProviderConfig, ...] = (),
        vendors: tuple[VendorConfig, ...] = (),
        *,
        check: Callable[[ProviderConfig], None] = lambda spec: None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._engine = engine
        self._declared: dict[Kind, dict[str, Spec]] = {
            "provider": {p.name: p for p in providers},
            "vendor": {v.name: v for v in vendors},
        }
        self._check = check
        self._clock = clock or (lambda: datetime.now(UTC))

    def load(self) -> Entries:
        with self._engine.connect() as connection:
            stored = _stored(connection)
        return self._entries(stored)

    def declared(self, kind: Kind, name: str) -> bool:
        return name in self._declared[kind]

    def get(self, kind: Kind, name: str) -> Spec:
        return self.load().find(kind, name)

    def create(self, actor: str, spec: Spec) -> Spec:
        kind = _kind(spec)
        self._refuse_declared(kind, spec.name, "replace")
        exists = Conflict(f"A {kind} named '{spec.name}' already exists; update it with PATCH instead.")
        try:
            with self._engine.begin() as connection:
                stored = _stored(connection)
                if (kind, spec.name) in stored:
                    raise exists
                self._validate(spec, self._entries({**stored, (kind, spec.name): spec}))
                now = self._clock()
                values = {"kind": kind, "name": spec.name, "spec": _json(spec), "created_at": now, "updated_at": now}
                connection.execute(tables.routing_entries.insert().values(**values))
                self._changed(connection, actor, f"{kind}.create", kind, spec.name, after=_json(spec))
        except IntegrityError as exc:  # another gateway created it between our read and our insert
            raise exists from exc
        return spec

    def update(self, actor: str, spec: Spec) -> Spec:
        kind = _kind(spec)
        self._refuse_declared(kind, spec.name, "change")
        with self._engine.begin() as connection:
            stored = _stored(connection)
            before = stored.get((kind, spec.name))
            if before is None:
                raise _missing(kind, spec.name)
            self._validate(spec, self._entries({**stored, (kind, spec.name): spec}))
            r = tables.routing_entries
            connection.execute(
                r.update()
                .where(r.c.kind == kind, r.c.name == spec.name)
                .values(spec=_json(spec), updated_at=self._clock())
            )
            self._changed(connection, actor, f"{kind}.update", kind, spec.name, before=_json(before), after=_json(spec))
        return spec

    def delete(self, actor: str, kind: Kind, name: str) -> Spec:
        """Remove a stored entry; a vendor that a provider still names stays until that provider goes."""
        self._refuse_declared(kind, name, "remove")
        with self._engine.begin() as connection:
            stored = _stored(connection)
            before = stored.pop((kind, name), None)
            if before is None:
                raise _missing(kind, name)
            users = [p.name for p in self._entries(stored).providers if kind == "vendor" and p.vendor == name]
            if users:
                raise Conflict(
                    f"The vendor '{name}' is named by provider(s) {', '.join(users)}; "
                    "remove them or point them at another vendor first."
                )
            r = tables.routing_entries
            connection.execute(r.delete().where(r.c.kind == kind, r.c.name == name))
            self._changed(connection, actor, f"{kind}.delete", kind, name, before=_json(before))
        return before

    def _entries(self, stored: Mapping[tuple[Kind, str], Spec]) -> Entries:
        def of(kind: Kind) -> list[Any]:
            extra = [spec for (k, name), spec in stored.items() if k == kind and name not in self._declared[kind]]
            return [*self._declared[kind].values(), *extra]

        return Entries(tuple(of("provider")), tuple(of("vendor")), frozenset(stored))

    def _validate(self, spec: Spec, entries: Entries) -> None:
        """What a spec alone cannot say: the vendor a provider names exists, and its key is set here."""
        if isinstance(spec, ProviderConfig):
            vendors = {vendor.name for vendor in entries.vendors}
            if spec.vendor is not None and spec.vendor not in vendors:
                raise InvalidParameter(
                    f"Provider '{spec.name}' names vendor '{spec.vendor}', which does not exist; "
                    "create it with POST /admin/v1/vendors first.",
                    param="vendor",
                )
            try:
                self._check(spec)
            except BastionError as exc:
                raise InvalidParameter(exc.message, param="api_key_env") from exc

    def _refuse_declared(self, kind: Kind, name: str, verb: str) -> None:
        if self.declared(kind, name):
            raise Conflict(
                f"The {kind} '{name}' is declared in bastion.yaml, which the admin API does not {verb}; "
                "edit the file and restart the gateway."
            )

    def _changed(self, connection: Connection, actor: str, action: str, kind: Kind, name: str, **states: Any) -> None:
        events.record(connection, self._clock(), actor, action, (kind, name), **states)
        changes.bump(connection, REVISION)


def _missing(kind: Kind, name: str) -> NotFound:
    return NotFound(f"No {kind} is named '{name}'; GET /admin/v1/{_PLURAL[kind]} lists them.")


def _kind(spec: Spec) -> Kind:
    return "provider" if isinstance(spec, ProviderConfig) else "vendor"


def _json(spec: Spec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_defaults=True)


def _stored(connection: Connection) -> dict[tuple[Kind, str], Spec]:
    """The stored entries; one that no longer validates (a newer gateway wrote it) is skipped and logged."""
    r = tables.routing_entries
    rows = connection.execute(select(r.c.kind, r.c.name, r.c.spec).order_by(r.c.created_at, r.c.name))
    found: dict[tuple[Kind, str], Spec] = {}
    for kind, name, spec in rows:
        if kind not in _SPECS:
            continue
        try:
            found[kind, name] = _SPECS[kind].model_validate(spec)
        except ValidationError as exc:
            log.error("stored %s '%s' is not valid here and is left out: %s", kind, name, exc.errors()[0]["msg"])
    return found


class LiveRouting:
    """Keeps a running gateway's router, breakers and probes in step with the catalog.

    ``sync`` costs one change-feed read when nothing changed; after a change it reloads the catalog in a
    thread and swaps the router's providers and vendors. Requests in flight keep the routes they planned.
    Provider objects whose spec did not change are kept, so their connections and breakers carry on.
    """

    def __init__(
        self,
        catalog: Catalog,
        feed: ChangeFeed,
        router: Router,
        build: Callable[[ProviderConfig], Provider],
        entries: Entries,
        prober: Prober | None = None,
    ) -> None:
        self._catalog = catalog
        self._feed = feed
        self._router = router
        self._build = build
        self._prober = prober
        self._token: int | None = feed.token(REVISION)
        self._lock = asyncio.Lock()
        self.entries = entries

    @property
    def router(self) -> Router:
        return self._router

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def stale(self) -> None:
        """Reload on the next request, whatever the change feed says (this gateway just made a change)."""
        self._token = None

    async def sync(self) -> None:
        if self._feed.token(REVISION) == self._token:
            return
        async with self._lock:
            token = self._feed.token(REVISION)
            if token == self._token:
                return
            entries = await asyncio.to_thread(self._catalog.load)
            await self.adopt(entries)
            self._token = token

    async def adopt(self, entries: Entries) -> None:
        current = {provider.name: provider for provider in self._router.providers}
        providers = []
        for config in entries.providers:
            kept = current.get(config.name)
            if kept is not None and kept.config == config:
                providers.append(kept)
                continue
            try:
                providers.append(self._build(config))
            except BastionError as exc:
                if entries.source("provider", config.name) == "config":
                    raise  # the file's providers must all start: see ``bastion serve``
                log.error("provider '%s' is left out on this gateway: %s", config.name, exc.message)
        self._router.update(providers, vendors_from(entries.vendors))
        self._router.health.configure(thresholds_from(p.config for p in providers))
        if self._prober is not None:
            await self._prober.replace(probes_for(providers))
        self.entries = entries

    async def stop(self) -> None:
        """Stop probing, hand the breakers' last outcomes over, and release the providers."""
        if self._prober is not None:
            await self._prober.stop()
        await self._router.health.stop()
        for provider in self._router.providers:
            await provider.close()
