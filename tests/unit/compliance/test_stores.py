"""The data-subject report and erasure on SQLite and PostgreSQL, with an address full of LIKE wildcards and
an entry written before subject references existed (it names the person in clear)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bastion.audit.log import Record, append_in
from bastion.compliance import dsr, erasure
from bastion.compliance.render import to_json
from bastion.compliance.report import Query, period
from bastion.compliance.source import Source
from bastion.config import FileConfig, MemberConfig, ProjectConfig
from bastion.identity.keys import Owner

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.services import Services

ACTOR = "cli:test"
ZOE = "zoe_1%x@acme.com"  # '_' and '%' are LIKE wildcards: they must match only themselves
LOOKALIKE = "zoeA1Bx@acme.com"  # what the unescaped pattern zoe_1%x would also match


def everything(subject: str) -> Query:
    return Query(period(None, None, datetime.now(UTC)), subject=subject)


def test_dsr_and_erasure_on_every_store(make_services: Callable[..., Services], database_url: str) -> None:
    services = make_services(database_url)
    services.org.create_project(ACTOR, ProjectConfig(name="alpha"))
    for email in (ZOE, LOOKALIKE):
        member = MemberConfig.model_validate({"email": email, "role": "member", "projects": {"alpha": "member"}})
        services.org.add_member(ACTOR, member)
    services.keys.create("alpha", owner=Owner("member", ZOE), actor=ACTOR)
    with services.engine.begin() as connection:  # as entries were written before subject references
        legacy = [
            Record("member.update", ACTOR, fields={"target": {"type": "member", "id": e}}) for e in (ZOE, LOOKALIKE)
        ]
        first_legacy = append_in(connection, legacy)[0]
    source = Source.of(services, FileConfig())
    rows = to_json(dsr.build(source, everything(ZOE)))["sections"]["entries"]["rows"]
    assert [(row["action"], row["link"]) for row in rows] == [
        ("member.add", "reference"),
        ("key.create", "reference"),
        ("member.update", "in clear"),
    ]
    assert rows[-1]["seq"] == first_legacy
    services.org.remove_member(ACTOR, ZOE)
    done = erasure.erase(source, ZOE.upper(), ACTOR)
    assert (done.key_shredded, done.members_scrubbed, done.events_scrubbed, done.entries_unlinked) == (True, 1, 2, 3)
    after = to_json(dsr.build(source, everything(ZOE)))
    assert after["summary"]["status"] == "erased"
    assert [row["link"] for row in after["sections"]["entries"]["rows"]] == ["in clear"]  # written in clear for good
    table = json.dumps(services.org.events(limit=100), default=str)
    assert ZOE not in table and LOOKALIKE.lower() in table  # addresses are stored lower-case
