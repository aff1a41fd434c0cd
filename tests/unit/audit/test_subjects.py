"""Subject references: addresses become ``subj_<hex>`` in entries, keyed per person, unlinkable once shredded."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bastion.audit import subjects
from bastion.audit.keys import key_in

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.services import Services


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("ann@acme.com", "{ann}"),
        ("member:ann@acme.com", "member:{ann}"),
        ("Ann@Acme.COM", "{ann}"),  # addresses compare case-insensitively
        ("invited ann@acme.com and bob@acme.co.uk.", "invited {ann} and {bob}."),
        ("erased-mem_1@invalid", "erased-mem_1@invalid"),  # the erasure placeholder names nobody
        ("cli:root", "cli:root"),
        ("not an address: a@b", "not an address: a@b"),
    ],
)
def test_addresses_in_any_string_become_references(
    make_services: Callable[..., Services], text: str, shape: str
) -> None:
    services = make_services()
    with services.engine.begin() as connection:
        cleaned, refs = subjects.pseudonymise(connection, {"value": text, "nested": [{"deep": text}]})
    ann, bob = (subjects.ref(services.audit_keys, a) for a in ("ann@acme.com", "bob@acme.co.uk"))
    expected = shape.format(ann=ann, bob=bob)
    assert cleaned == {"value": expected, "nested": [{"deep": expected}]}
    assert refs == [ref for ref in (ann, bob) if ref in expected]
    assert "@acme" not in str(cleaned)


def test_references_are_per_person_stable_and_name_nobody(
    make_services: Callable[..., Services], database_url: str
) -> None:
    services = make_services(database_url)
    keys = services.audit_keys
    ann = subjects.ref(keys, "ann@acme.com")
    assert ann is not None and ann.startswith("subj_") and len(ann) == 37
    assert subjects.ref(keys, " ANN@acme.com ") == ann
    assert subjects.cached_ref(keys, "ann@acme.com") == ann
    assert subjects.ref(keys, "bob@acme.com") not in (None, ann)
    with services.engine.connect() as connection:
        found = subjects.lookup(connection, keys, "ann@acme.com")
        unknown = subjects.lookup(connection, keys, "zed@acme.com")
    assert (found.status, found.ref) == ("linked", ann)
    assert found.scope is not None and "ann" not in found.scope
    assert (unknown.status, unknown.ref) == ("unknown", None)


def test_a_shredded_subject_cannot_be_linked_and_a_new_mention_gets_a_new_key(
    make_services: Callable[..., Services], database_url: str
) -> None:
    services = make_services(database_url)
    keys = services.audit_keys
    before = subjects.ref(keys, "ann@acme.com")
    with services.engine.connect() as connection:
        scope = subjects.lookup(connection, keys, "ann@acme.com").scope
    assert scope is not None
    keys.shred(scope)
    with services.engine.connect() as connection:
        erased = subjects.lookup(connection, keys, "ann@acme.com")
        assert key_in(keys, connection, scope, create=False) is None
    assert (erased.status, erased.ref, subjects.ref(keys, "ann@acme.com")) == ("erased", None, None)
    assert keys.shredded(scope)
    with services.engine.begin() as connection:  # e.g. the person is invited again, later
        _, (renewed,) = subjects.pseudonymise(connection, {"email": "ann@acme.com"})
    assert renewed != before and not keys.shredded(scope)


def test_admin_events_need_the_audit_keys_on_the_engine(make_services: Callable[..., Services]) -> None:
    services = make_services()
    bare = services.engine.execution_options(bastion_audit_keys=None)
    with bare.begin() as connection, pytest.raises(RuntimeError, match="open_services"):
        subjects.pseudonymise(connection, {"email": "ann@acme.com"})
