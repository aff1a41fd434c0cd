"""Open the store and the services on it; the one start-up path shared by the gateway and the CLI."""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bastion.audit import subjects
from bastion.audit.keys import AuditKeys
from bastion.identity import apply
from bastion.identity.keys import KeyService
from bastion.identity.org import OrgService
from bastion.identity.secret import load_secret
from bastion.protect.vaults import VaultStore
from bastion.store.engine import exclusive, make_engine, migrate

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from bastion.config import FileConfig, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    engine: Engine
    keys: KeyService
    org: OrgService
    audit_keys: AuditKeys
    vaults: VaultStore

    def close(self) -> None:
        self.engine.dispose()


def open_services(settings: Settings, *, ensure_file: bool = True) -> Services:
    """Migrate the schema, load the server secret, and make the store hold what the file declares.

    ``ensure_file=False`` leaves the store as it is: ``bastion apply`` shows its plan before changing anything.
    """
    engine = make_engine(settings.database_url)
    secret = load_secret(settings.secret_key, settings.home)
    services = Services(
        engine=engine,
        keys=KeyService(engine, secret),
        org=OrgService(engine),
        audit_keys=AuditKeys(engine, secret),
        vaults=VaultStore(engine, secret),
    )
    subjects.attach(engine, services.audit_keys)  # admin events name people by subject reference
    with exclusive(engine):
        migrate(engine)
        if ensure_file:
            ensure(services, settings.file)
    return services


def local_actor(verb: str = "cli") -> str:
    """The actor recorded for changes made on this machine: ``cli:<os user>``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{verb}:{user}"


def ensure(services: Services, file: FileConfig) -> None:
    """Create and update what the file declares; never delete (that is ``bastion apply``'s job)."""
    if not (file.projects or file.members or file.service_accounts):
        return
    changes = apply.plan(file, services.org, services.keys, deletes=False)
    apply.execute(changes, services.org, local_actor("config"))
    extra = apply.plan(file, services.org, services.keys)
    if extra:
        names = ", ".join(f"{c.kind} {c.name}" for c in extra)
        log.warning(
            "the store holds objects the config file does not declare (%s); 'bastion apply' removes them", names
        )
