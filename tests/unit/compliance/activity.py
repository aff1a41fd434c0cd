"""A store with real activity for the report tests: an organisation changed through the services and
requests driven through the gateway (echo provider), on a frozen clock that crosses two days.

Built once per session into an SQLite file that each test copies (:func:`copy_store`). ``Activity``
keeps what the client saw (status, usage) for every request, so tests compute the expected numbers
from the responses, independently of the report code.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
import pytest
from tests.conftest import SECRET
from tests.harness import in_process, runtime_of

from bastion.audit import log as audit_log
from bastion.compliance.report import Query, period
from bastion.config import FileConfig, MemberConfig, ProjectConfig, ServiceAccountConfig, settings_from
from bastion.identity.keys import KeyService, Owner
from bastion.identity.org import OrgService

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

SETUP = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
DAY1 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
DAY2 = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # when the reports are generated
ACTOR = "cli:test"
SECRET_WORDS = "the merger closes on friday"
PROVIDERS = [{"name": "local", "kind": "echo", "models": ["echo-1", "echo-2"]}]
MEMBERS = {
    "ann@acme.com": ("owner", {}),
    "bob@acme.com": ("member", {"alpha": "member"}),
    "cat@acme.com": ("reader", {"alpha": "reader"}),
    "dan@acme.com": ("member", {"beta": "admin"}),
    "lee@acme.com": ("member", {"alpha": "admin"}),
}


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


class FrozenDatetime(datetime):
    """``datetime`` whose ``now()`` reads the activity's clock: audit entries of requests get its time."""

    clock: ClassVar[Clock]

    @classmethod
    def now(cls, tz: Any = None) -> FrozenDatetime:  # type: ignore[override]
        return cls.clock.now  # type: ignore[return-value]


@dataclass(frozen=True)
class Call:
    """One request as the client saw it."""

    day: str
    project: str | None
    principal: str | None
    model: str
    status: int
    usage: dict[str, int] | None
    reason: str | None = None


@dataclass
class Activity:
    database: Path
    calls: list[Call] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)  # label -> plaintext
    ids: dict[str, str] = field(default_factory=dict)  # label -> key id or member id


def settings_for(home: Path, database: Path | None = None) -> Any:
    env = {"BASTION_HOME": str(home), "BASTION_SECRET_KEY": SECRET}
    if database is not None:
        env["BASTION_DATABASE_URL"] = f"sqlite:///{database}"
    return settings_from(FileConfig.model_validate({"providers": PROVIDERS}), "<activity>", env)


def _organise(org: OrgService, keys: KeyService, activity: Activity) -> None:
    alpha = {"name": "alpha", "models": ["echo-1", "echo-2"], "keys": {"max_age": "30d"}}
    org.create_project(ACTOR, ProjectConfig.model_validate(alpha))
    org.create_project(ACTOR, ProjectConfig(name="beta"))
    for email, (role, projects) in MEMBERS.items():
        member = org.add_member(
            ACTOR, MemberConfig.model_validate({"email": email, "role": role, "projects": projects})
        )
        activity.ids[email] = member.id
    bot_a = {"name": "bot-a", "project": "alpha", "permissions": ["chat.completions"], "ip_allowlist": ["127.0.0.0/8"]}
    org.create_service_account(ACTOR, ServiceAccountConfig.model_validate(bot_a))
    bot_b = {"name": "bot-b", "project": "beta", "limits": {"rpm": 1}}
    org.create_service_account(ACTOR, ServiceAccountConfig.model_validate(bot_b))
    owners = {
        "bob": ("alpha", Owner("member", "bob@acme.com"), None),
        "ann": ("alpha", Owner("member", "ann@acme.com"), None),
        "cat": ("alpha", Owner("member", "cat@acme.com"), None),
        "lee": ("alpha", Owner("member", "lee@acme.com"), None),
        "bota": ("alpha", Owner("service_account", "bot-a"), None),
        "beta": ("beta", Owner(), None),
        "dan": ("beta", Owner("member", "dan@acme.com"), None),
        "botb": ("beta", Owner("service_account", "bot-b"), None),
        "old": ("alpha", Owner(), None),
        "soon": ("beta", Owner(), timedelta(days=29)),
        "short": ("beta", Owner(), timedelta(days=1)),
    }
    for label, (project, owner, life) in owners.items():
        record, activity.keys[label] = keys.create(project, label, life, owner=owner, actor=ACTOR)
        activity.ids[label] = record.id


def _chat(model: str, words: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": f"{words}: {SECRET_WORDS}"}], **extra}


def _streamed_usage(response: httpx.Response) -> dict[str, int] | None:
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ") and line != "data: [DONE]"]
    last = orjson.loads(events[-1])
    return last.get("usage")


async def _call(http: httpx.AsyncClient, activity: Activity, request: tuple[Any, ...], day: str) -> None:
    label, path, body, project, principal = request
    key = activity.keys.get(label, "bst_not-a-key")
    response = await http.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
    usage = None
    if response.status_code == 200:
        usage = _streamed_usage(response) if body.get("stream") else response.json()["usage"]
    reason = response.json()["error"]["code"] if response.status_code >= 400 else None
    activity.calls.append(Call(day, project, principal, body["model"], response.status_code, usage, reason))


def _requests(activity: Activity, day: int) -> list[tuple[Any, ...]]:
    chat, embed = "/v1/chat/completions", "/v1/embeddings"
    bob, dan = f"member:{activity.ids['bob@acme.com']}", f"member:{activity.ids['dan@acme.com']}"
    if day == 1:
        return [
            ("bob", chat, _chat("echo-1", "hello there"), "alpha", bob),
            ("bob", chat, _chat("echo-2", "a longer question about quarterly numbers"), "alpha", bob),
            ("bota", chat, _chat("echo-1", "status"), "alpha", "service_account:bot-a"),
            ("beta", chat, _chat("echo-1", "beta says hi"), "beta", "project:beta"),
            ("bob", chat, _chat("echo-3", "not allowed"), "alpha", bob),
            ("bota", embed, {"model": "echo-1", "input": "no permission"}, "alpha", "service_account:bot-a"),
            ("nobody", chat, _chat("echo-1", "who"), None, None),
            ("nobody", chat, _chat("echo-1", "who again"), None, None),
            ("botb", chat, _chat("echo-1", "first"), "beta", "service_account:bot-b"),
            ("botb", chat, _chat("echo-1", "second"), "beta", "service_account:bot-b"),
        ]
    return [
        ("dan", chat, _chat("echo-2", "dan asks"), "beta", dan),
        ("bob", chat, _chat("echo-1", "stream me", stream=True), "alpha", bob),
        (
            "bob",
            chat,
            _chat("echo-1", "stream usage", stream=True, stream_options={"include_usage": True}),
            "alpha",
            bob,
        ),
        ("beta", embed, {"model": "echo-1", "input": "embed this text"}, "beta", "project:beta"),
    ]


def _change(org: OrgService, keys: KeyService, activity: Activity) -> None:
    """Day two's admin changes: a role change, an invite by the owner, a revocation and a rotation."""
    dan = MemberConfig.model_validate({"email": "dan@acme.com", "role": "admin", "projects": {"beta": "admin"}})
    org.update_member(ACTOR, dan)
    eve = MemberConfig.model_validate({"email": "eve@acme.com", "role": "member", "projects": {"alpha": "member"}})
    org.invite("member:ann@acme.com", eve, timedelta(days=7))
    keys.revoke(activity.ids["old"], actor=ACTOR)
    new, _ = keys.rotate(activity.ids["dan"], timedelta(days=28), actor=ACTOR)
    activity.ids["dan2"] = new.id


async def _drive(home: Path, activity: Activity) -> None:
    clock = Clock(SETUP)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FrozenDatetime, "clock", clock, raising=False)
        patch.setattr(audit_log, "datetime", FrozenDatetime)
        async with in_process(settings_for(home)) as (app, http):
            engine = runtime_of(app).services.engine
            org, keys = OrgService(engine, clock), KeyService(engine, SECRET.encode(), clock)
            _organise(org, keys, activity)
            for day, when in ((1, DAY1), (2, DAY2)):
                clock.now = when
                for request in _requests(activity, day):
                    await _call(http, activity, request, when.strftime("%Y-%m-%d"))
            _change(org, keys, activity)


def build_activity(home: Path) -> Activity:
    """The store with the activity, under ``home`` (call once per session)."""
    activity = Activity(home / "bastion.db")
    asyncio.run(_drive(home, activity))
    return activity


def copy_store(activity: Activity, target: Path) -> Path:
    """A private copy of the activity's SQLite store for one test; returns the database path."""
    target.mkdir(parents=True, exist_ok=True)
    copy = target / "bastion.db"
    for suffix in ("", "-wal", "-shm"):
        source = activity.database.with_name(activity.database.name + suffix)
        if source.exists():
            shutil.copy(source, copy.with_name(copy.name + suffix))
    return copy


def query(
    since: str | None = None, until: str | None = None, project: str | None = None, subject: str | None = None
) -> Query:
    """A query as the CLI makes it, at NOW."""
    return Query(period(since, until, NOW), project, subject)
