"""Open the store and the services on it; the one start-up path shared by the gateway and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bastion.identity.keys import KeyService
from bastion.identity.secret import load_secret
from bastion.store.engine import make_engine, migrate
from bastion.store.keys import sync_projects

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from bastion.config import Settings


@dataclass(frozen=True)
class Services:
    engine: Engine
    keys: KeyService

    def close(self) -> None:
        self.engine.dispose()


def open_services(settings: Settings) -> Services:
    """Migrate the schema, make the store hold the configured projects, and load the server secret."""
    engine = make_engine(settings.database_url)
    migrate(engine)
    with engine.begin() as connection:
        sync_projects(connection, [(p.name, p.environment) for p in settings.file.projects], datetime.now(UTC))
    secret = load_secret(settings.secret_key, settings.home)
    return Services(engine=engine, keys=KeyService(engine, secret))
