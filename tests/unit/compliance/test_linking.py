"""Subject linking in the real activity: the log names people only by reference, the admin events table as they are."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bastion.audit import subjects
from bastion.store import tables

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.unit.compliance.activity import Activity

    from bastion.services import Services

ADDRESS = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def entries(services: Services) -> list[dict[str, Any]]:
    with services.engine.connect() as connection:
        rows = connection.execute(select(tables.audit_entries.c.entry, tables.audit_entries.c.actor))
        return [{**json.loads(row.entry), "column_actor": row.actor} for row in rows]


def test_no_entry_names_anyone_in_clear_but_the_admin_events_table_does(
    activity_services: Callable[[], Services],
) -> None:
    services = activity_services()
    logged = entries(services)
    assert logged and not ADDRESS.findall(json.dumps(logged))
    table = services.org.events(limit=1000)
    assert {"bob@acme.com", "eve@acme.com"} <= set(ADDRESS.findall(json.dumps(table, default=str)))


def test_admin_entries_list_every_person_they_are_about(
    activity_services: Callable[[], Services], activity: Activity
) -> None:
    services = activity_services()
    ref = {
        email: subjects.ref(services.audit_keys, email) for email in ("ann@acme.com", "bob@acme.com", "eve@acme.com")
    }
    logged = entries(services)
    added = next(e for e in logged if e["action"] == "member.add" and e["after"]["id"] == activity.ids["bob@acme.com"])
    assert (added["target"], added["after"]["email"], added["subjects"]) == (
        {"type": "member", "id": ref["bob@acme.com"]},
        ref["bob@acme.com"],
        [ref["bob@acme.com"]],
    )
    invite = next(e for e in logged if e["action"] == "invite.create")
    assert (invite["actor"], invite["column_actor"]) == (f"member:{ref['ann@acme.com']}",) * 2
    assert invite["after"]["created_by"] == f"member:{ref['ann@acme.com']}"
    assert invite["subjects"] == [ref["ann@acme.com"], ref["eve@acme.com"]]
    key = next(e for e in logged if e["action"] == "key.create" and e["target"]["id"] == activity.ids["bob"])
    assert key["subjects"] == [ref["bob@acme.com"]]  # the key names its holder by id only; the entry links them
    project = next(e for e in logged if e["action"] == "project.create")
    assert project["subjects"] == []


def test_request_entries_of_members_carry_their_reference(
    activity_services: Callable[[], Services], activity: Activity
) -> None:
    services = activity_services()
    bob = subjects.ref(services.audit_keys, "bob@acme.com")
    requests = [e for e in entries(services) if e["action"].startswith("request.")]
    by_actor = {e["actor"]: e["subjects"] for e in requests}
    assert by_actor == {
        f"member:{activity.ids['bob@acme.com']}": [bob],
        f"member:{activity.ids['dan@acme.com']}": [subjects.ref(services.audit_keys, "dan@acme.com")],
        "service_account:bot-a": [],
        "service_account:bot-b": [],
        "project:beta": [],
        "anonymous": [],
    }
