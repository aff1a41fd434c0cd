"""Persistence: SQLAlchemy 2 Core tables, repositories and Alembic migrations (SQLite and PostgreSQL)."""
