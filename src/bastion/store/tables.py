"""The schema, as SQLAlchemy Core tables; Alembic migrations create exactly these."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(63), nullable=False, unique=True),
    Column("environment", String(16), nullable=False),
    Column("models", JSON, nullable=True),  # allowlist; NULL: every served model
    Column("limits", JSON, nullable=False),  # {"rpm", "tpm", "daily_tokens"} for the whole project
    Column("key_limits", JSON, nullable=False),  # the same, for each key of the project
    Column("key_max_age", Integer, nullable=True),  # seconds
    Column("key_over_age", String(8), nullable=False),  # "refuse" | "warn"
    Column("created_at", UTCDateTime(), nullable=False),
    Column("deleted_at", UTCDateTime(), nullable=True),
    Column("residency", JSON, nullable=True),  # allowed residencies; NULL: any
    Column("data_policy", JSON, nullable=False),  # DataPolicyConfig as JSON; {}: the defaults
)

members = Table(
    "members",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("ip_allowlist", JSON, nullable=False),
    Column("limits", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("removed_at", UTCDateTime(), nullable=True),
)

project_members = Table(
    "project_members",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("member_id", String(32), ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(16), nullable=False),
)

invites = Table(
    "invites",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("email", String(254), nullable=False),
    Column("role", String(16), nullable=False),
    Column("projects", JSON, nullable=False),  # {project name: project role}
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("accepted_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

service_accounts = Table(
    "service_accounts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(63), nullable=False, unique=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="RESTRICT"), nullable=False, index=True),
    Column("permissions", JSON, nullable=False),
    Column("ip_allowlist", JSON, nullable=False),
    Column("limits", JSON, nullable=False),
    Column("key_ttl", Integer, nullable=True),  # seconds
    Column("created_at", UTCDateTime(), nullable=False),
    Column("removed_at", UTCDateTime(), nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="RESTRICT"), nullable=False, index=True),
    Column("principal_type", String(16), nullable=False),  # "member" | "service_account" | "project"
    Column("principal_id", String(32), nullable=True, index=True),
    Column("name", String(128), nullable=False),
    Column("prefix", String(32), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # "active" | "rotating" | "revoked"; "expired" is derived
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("rotated_to", String(32), nullable=True),
)

# Every change made through the admin API, the CLI or apply: who, what, and the object before and after.
admin_events = Table(
    "admin_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(300), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target_type", String(32), nullable=False),
    Column("target_id", String(300), nullable=False),
    Column("project", String(63), nullable=True, index=True),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
)

# The audit log: one row per entry, dense sequence numbers from 0, the canonical bytes that are hashed.
audit_entries = Table(
    "audit_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("time", UTCDateTime(), nullable=False, index=True),
    Column("action", String(64), nullable=False, index=True),
    Column("actor", String(300), nullable=False, index=True),
    Column("project", String(63), nullable=True, index=True),
    Column("status", Integer, nullable=True),
    Column("request_id", String(40), nullable=True, index=True),
    Column("entry", Text, nullable=False),
    Column("leaf", String(64), nullable=False),
)

# The tree's state after the last entry: its size and compact range (perfect subtrees, tallest first).
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("frontier", JSON, nullable=False),
    Column("root", String(64), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("size", BigInteger, nullable=False, index=True),
    Column("root", String(64), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# HMAC keys for the keyed hashes in entries, sealed with the server secret: one per project, one per
# data subject. Shredding a subject's key (GDPR erasure) makes its hashes unlinkable; proofs stay valid.
audit_keys = Table(
    "audit_keys",
    metadata,
    Column("scope", String(160), primary_key=True),
    Column("sealed", String(200), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("shredded_at", UTCDateTime(), nullable=True),
)

# A project's placeholders between requests (data_policy.vault.persist): AES-GCM sealed, replaced by
# compare-and-set on ``version`` so that two replicas never hand out one number for two values.
vaults = Table(
    "vaults",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id"), primary_key=True, autoincrement=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("version", Integer, nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

# Providers and vendors added over the admin API (those of bastion.yaml are not stored): each row is the
# entry as the config file would spell it, validated by the same spec.
routing_entries = Table(
    "routing_entries",
    metadata,
    Column("kind", String(16), primary_key=True),  # provider | vendor
    Column("name", String(64), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# One counter per kind of cached object; bumping it tells every gateway process to drop its cache.
revisions = Table(
    "revisions",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
