from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, text
from tests.harness import in_process, runtime_of
from tests.processes import ROOT

from bastion.audit.log import AuditLog, Record, append_in, canonical, head
from bastion.audit.merkle import leaf_hash, root
from bastion.errors import AuditUnavailable
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Engine

    from bastion.config import Settings
    from bastion.services import Services


def rows(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(tables.audit_entries).order_by(tables.audit_entries.c.seq)))


def assert_dense_and_consistent(engine: Engine, count: int) -> None:
    found = rows(engine)
    assert [row.seq for row in found] == list(range(count))
    leaves = [leaf_hash(row.entry.encode()) for row in found]
    assert [row.leaf for row in found] == [leaf.hex() for leaf in leaves]
    assert [json.loads(row.entry)["seq"] for row in found] == list(range(count))
    with engine.connect() as connection:
        assert head(connection) == (count, root(leaves))


def test_canonical_bytes_are_sorted_and_compact() -> None:
    assert canonical({"b": 1, "a": [1, {"d": None, "c": "é"}]}) == '{"a":[1,{"c":"é","d":null}],"b":1}'.encode()


def test_concurrent_writers_get_dense_sequence_numbers(
    make_services: Callable[..., Services], database_url: str
) -> None:
    engine = make_services(database_url).engine

    def writer(name: str) -> None:
        for index in range(25):
            with engine.begin() as connection:
                append_in(connection, [Record("test.append", f"writer:{name}", fields={"n": index})])

    threads = [threading.Thread(target=writer, args=(str(i),)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert_dense_and_consistent(engine, 200)


def test_two_processes_append_to_one_log(make_services: Callable[..., Services], postgres_url: str) -> None:
    engine = make_services(postgres_url).engine
    script = (
        "import sys\nfrom bastion.store.engine import make_engine\nfrom bastion.audit.log import Record, append_in\n"
        "engine = make_engine(sys.argv[1])\n"
        "for i in range(100):\n"
        "    with engine.begin() as c:\n"
        "        append_in(c, [Record('test.append', 'process:' + sys.argv[2], fields={'n': i})])\n"
    )
    children = [subprocess.Popen([sys.executable, "-c", script, postgres_url, str(i)], cwd=ROOT) for i in range(2)]
    assert [child.wait(timeout=120) for child in children] == [0, 0]
    assert_dense_and_consistent(engine, 200)


@pytest.mark.anyio
async def test_group_commit_answers_each_caller_once_committed(make_services: Callable[..., Services]) -> None:
    engine = make_services().engine
    log = AuditLog(engine)
    transactions: list[int] = []
    write = log._write

    def counted(records: list[Record]) -> list[int]:
        transactions.append(len(records))
        return write(records)

    log._write = counted  # type: ignore[method-assign]
    log.start()
    seqs = await asyncio.gather(*(log.append(Record("test.append", "a", fields={"n": i})) for i in range(300)))
    await log.stop()
    assert sorted(seqs) == list(range(300))
    assert sum(transactions) == 300
    assert len(transactions) < 300  # many requests, far fewer transactions
    assert_dense_and_consistent(engine, 300)


@pytest.mark.anyio
async def test_a_log_that_cannot_write_refuses(make_services: Callable[..., Services]) -> None:
    engine = make_services().engine
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE audit_entries"))
    log = AuditLog(engine)
    log.start()
    with pytest.raises(AuditUnavailable):
        await log.append(Record("test.append", "a"))
    await log.stop()
    with pytest.raises(AuditUnavailable, match="not running"):
        await log.append(Record("test.append", "a"))


def entries(engine: Engine) -> list[dict[str, Any]]:
    return [json.loads(row.entry) for row in rows(engine)]


@pytest.mark.anyio
async def test_requests_are_recorded_without_their_content(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        providers=[{"name": "local", "kind": "echo", "models": ["echo-1"]}], projects=[{"name": "p"}]
    )
    secret_words = "the merger closes on friday"
    async with in_process(settings) as (app, http):
        runtime = runtime_of(app)
        _, key = runtime.services.keys.create("p", actor="cli:test")
        body = {"model": "echo-1", "messages": [{"role": "user", "content": secret_words}]}
        reply = await http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
        refused = await http.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer bst_wrong"})
        project_key = runtime.services.audit_keys.key("project:p")
        request_id = reply.headers["x-bastion-request-id"]
        sent = reply.request.content
    assert (reply.status_code, refused.status_code) == (200, 401)
    logged = entries(runtime.services.engine)
    assert secret_words not in json.dumps(logged) and key not in json.dumps(logged)
    actions = [(e["action"], e["request_id"]) for e in logged]
    assert actions[-3:] == [
        ("request.forwarded", request_id),
        ("request.completed", request_id),
        ("request.refused", refused.headers["x-bastion-request-id"]),
    ]
    forwarded, completed, refusal = logged[-3:]
    assert forwarded["request_hash"] == hmac.new(project_key, sent, hashlib.sha256).hexdigest()
    assert completed["response_hash"] == hmac.new(project_key, reply.content, hashlib.sha256).hexdigest()
    assert completed["tokens"] == reply.json()["usage"]
    assert (completed["actor"], completed["project"], completed["model"], completed["status"]) == (
        "project:p",
        "p",
        "echo-1",
        200,
    )
    assert (refusal["reason"], refusal["actor"], refusal["status"]) == ("invalid_api_key", "anonymous", 401)
    assert any(e["action"] == "key.create" and e["actor"] == "cli:test" for e in logged)


@pytest.mark.anyio
async def test_admin_api_refusals_are_recorded(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        providers=[{"name": "local", "kind": "echo", "models": ["echo-1"]}], projects=[{"name": "p"}]
    )
    async with in_process(settings) as (app, http):
        refused = await http.get("/admin/v1/me", headers={"Authorization": "Bearer bst_nobody"})
        logged = entries(runtime_of(app).services.engine)
    assert refused.status_code == 401
    last = logged[-1]
    assert (last["action"], last["endpoint"], last["reason"]) == ("request.refused", "admin", "invalid_api_key")
    assert last["request_id"] == refused.headers["x-bastion-request-id"]
