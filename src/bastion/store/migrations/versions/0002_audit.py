"""The audit log: entries, the tree head, signed checkpoints, and sealed HMAC keys.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

from bastion.store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(300), nullable=False),
        sa.Column("project", sa.String(63), nullable=True),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("request_id", sa.String(40), nullable=True),
        sa.Column("entry", sa.Text, nullable=False),
        sa.Column("leaf", sa.String(64), nullable=False),
    )
    for column in ("time", "action", "actor", "project", "request_id"):
        op.create_index(f"ix_audit_entries_{column}", "audit_entries", [column])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("frontier", sa.JSON, nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "size": 0, "frontier": [], "root": hashlib.sha256(b"").hexdigest()}])
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_audit_checkpoints_size", "audit_checkpoints", ["size"])
    op.create_table(
        "audit_keys",
        sa.Column("scope", sa.String(160), primary_key=True),
        sa.Column("sealed", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("shredded_at", UTCDateTime(), nullable=True),
    )
