"""Factories shared by the suite: settings, databases (SQLite and PostgreSQL) and services.

PostgreSQL and Redis tests read BASTION_TEST_POSTGRES_URL / BASTION_TEST_REDIS_URL; they skip when
the server is unreachable, except under BASTION_REQUIRE_SERVICES=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import secrets
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import sql
from redis.exceptions import RedisError

from bastion.config import FileConfig, Settings, settings_from
from bastion.policy.redis_limits import connect
from bastion.services import Services, open_services

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator
    from pathlib import Path

    from redis.asyncio import Redis

POSTGRES_URL = os.environ.get("BASTION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BASTION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "s" * 64


def services_required() -> bool:
    return os.environ.get("BASTION_REQUIRE_SERVICES") == "1"


def unavailable(what: str, exc: BaseException) -> None:
    """Skip (or, when services are required, fail) a test whose server is not reachable."""
    message = f"{what} is not reachable ({type(exc).__name__}: {exc}); start it or set BASTION_TEST_*_URL"
    if services_required():
        pytest.fail(message)
    pytest.skip(message)


@asynccontextmanager
async def scratch_redis(kind: str = "") -> AsyncIterator[tuple[Redis, str]]:
    """A Redis client and a key prefix of this test's own (``bastion-test:<random>:<kind>``), emptied after it;
    skips (or fails, with ``BASTION_REQUIRE_SERVICES=1``) when Redis is unreachable."""
    client = connect(REDIS_URL)
    try:
        await client.ping()
    except RedisError as exc:
        await client.aclose()
        unavailable(f"Redis at {REDIS_URL}", exc)
    prefix = f"bastion-test:{secrets.token_hex(6)}:{kind}"
    try:
        yield client, prefix
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin = _libpq(POSTGRES_URL)
    name = f"bastion_t_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", exc)
    base, _, _ = POSTGRES_URL.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bastion.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """``make_settings(database_url=..., providers=[...], projects=[...])`` -> Settings in a temp home."""

    def make(database_url: str | None = None, **file: Any) -> Settings:
        env = {"BASTION_HOME": str(tmp_path / "home"), "BASTION_SECRET_KEY": SECRET}
        if database_url:
            env["BASTION_DATABASE_URL"] = database_url
        return settings_from(FileConfig.model_validate(file), "<test>", env)

    return make


@pytest.fixture
def make_services(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Services]]:
    """``make_services(database_url, **file)`` -> migrated store and services, closed after the test."""
    opened: list[Services] = []

    def make(database_url: str | None = None, **file: Any) -> Services:
        services = open_services(make_settings(database_url, **file))
        opened.append(services)
        return services

    yield make
    for services in opened:
        services.close()
