"""What the reports read: the store, the organisation services, the audit keys and the configured providers.

The CLI builds a :class:`Source` from the services it opens, the admin API from the gateway's own; both
then call the same report builders. Audit entries are streamed in sequence order, so a report over a
million entries holds one batch in memory at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import func, select

from bastion.compliance.report import LogReference, Report
from bastion.errors import NotFound
from bastion.routing.catalog import Catalog
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from sqlalchemy import ColumnElement, Engine

    from bastion.audit.keys import AuditKeys
    from bastion.compliance.report import Fact, Query, Section
    from bastion.config import FileConfig, ProviderConfig, VendorConfig
    from bastion.identity.keys import KeyService
    from bastion.identity.org import OrgService
    from bastion.services import Services

BATCH = 2000


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Entry:
    """One audit entry as the reports use it: the indexed columns and the parsed entry."""

    seq: int
    time: datetime
    action: str
    actor: str
    project: str | None
    status: int | None
    fields: dict[str, Any]

    @property
    def day(self) -> str:
        return self.time.astimezone(UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Source:
    engine: Engine
    org: OrgService
    keys: KeyService
    audit_keys: AuditKeys
    catalog: Catalog
    declared: frozenset[str] = frozenset()  # member addresses the config file declares
    clock: Callable[[], datetime] = field(default=_utcnow)

    @classmethod
    def of(
        cls,
        services: Services,
        file: FileConfig,
        catalog: Catalog | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> Source:
        """The source over ``services``, with the members ``file`` declares and the providers and vendors of
        ``catalog`` (by default: the file's and those added over the admin API)."""
        return cls(
            services.engine,
            services.org,
            services.keys,
            services.audit_keys,
            catalog or Catalog(services.engine, tuple(file.providers), tuple(file.vendors)),
            frozenset(member.email.lower() for member in file.members),
            clock or _utcnow,
        )

    @property
    def providers(self) -> tuple[ProviderConfig, ...]:
        return self.catalog.load().providers

    @property
    def vendors(self) -> tuple[VendorConfig, ...]:
        return self.catalog.load().vendors

    def now(self) -> datetime:
        return self.clock()

    def entries(
        self, query: Query, actions: Iterable[str] = (), where: ColumnElement[bool] | None = None
    ) -> Iterator[Entry]:
        """The audit entries of ``actions`` (all if empty) in the query's period and project, oldest first."""
        e = tables.audit_entries
        statement = select(e.c.seq, e.c.time, e.c.action, e.c.actor, e.c.project, e.c.status, e.c.entry)
        conditions = [e.c.time < query.period.until]
        if query.period.since is not None:
            conditions.append(e.c.time >= query.period.since)
        if query.project is not None:
            conditions.append(e.c.project == query.project)
        if actions:
            conditions.append(e.c.action.in_(list(actions)))
        if where is not None:
            conditions.append(where)
        statement = statement.where(*conditions).order_by(e.c.seq)
        with self.engine.connect() as connection:
            for row in connection.execution_options(yield_per=BATCH).execute(statement):
                yield Entry(row.seq, row.time, row.action, row.actor, row.project, row.status, orjson.loads(row.entry))

    def log_reference(self) -> LogReference:
        """The latest signed checkpoint, or the current tree head if none was signed yet."""
        c, h = tables.audit_checkpoints, tables.audit_head
        with self.engine.connect() as connection:
            head = connection.execute(select(h.c.size, h.c.root)).one()
            latest = connection.execute(select(c).order_by(c.c.size.desc(), c.c.id.desc()).limit(1)).one_or_none()
        if latest is None:
            return LogReference("head", int(head.size), head.root, int(head.size))
        return LogReference("checkpoint", int(latest.size), latest.root, int(head.size), latest.created_at, latest.note)

    def check_project(self, name: str) -> None:
        """Raise :class:`NotFound` unless a project of that name exists or existed (reports cover deleted ones)."""
        p = tables.projects
        with self.engine.connect() as connection:
            found = connection.execute(select(func.count()).select_from(p).where(p.c.name == name)).scalar_one()
        if not found:
            raise NotFound(f"No project is named '{name}'; list projects with 'bastion projects list'.")


def finish(
    source: Source,
    query: Query,
    name: str,
    title: str,
    summary: Iterable[Fact],
    sections: Iterable[Section],
    *,
    cites: bool = True,
) -> Report:
    """The report with its header: now, the period, the scope and, when it ``cites`` entries, the log state."""
    log = source.log_reference() if cites else None
    return Report(name, title, source.now(), query.period, query.project, log, tuple(summary), tuple(sections))
