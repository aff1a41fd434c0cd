from __future__ import annotations

from typing import TYPE_CHECKING

from bastion.config import parse_text
from bastion.identity import apply
from bastion.identity.keys import Owner

if TYPE_CHECKING:
    from collections.abc import Callable

    from bastion.services import Services

ORG = """\
projects:
  - name: support-bot
    environment: production
    limits: {rpm: 600}
  - name: research
members:
  - {email: alice@acme.com, role: owner}
  - {email: bob@acme.com, role: member, projects: {support-bot: member}}
service_accounts:
  - {name: chatbot-prod, project: support-bot, permissions: [chat.completions], ip_allowlist: [10.0.1.0/24]}
"""


def test_plan_apply_and_apply_again_is_a_no_op(make_services: Callable[..., Services]) -> None:
    services = make_services()
    file = parse_text(ORG, "org.yaml")
    changes = apply.plan(file, services.org, services.keys)
    assert [(c.action, c.kind, c.name) for c in changes] == [
        ("create", "project", "support-bot"),
        ("create", "project", "research"),
        ("create", "member", "alice@acme.com"),
        ("create", "member", "bob@acme.com"),
        ("create", "service_account", "chatbot-prod"),
    ]
    assert services.org.projects() == []  # planning changes nothing
    apply.execute(changes, services.org, "apply:test")
    assert apply.plan(file, services.org, services.keys) == []
    assert services.org.service_account("chatbot-prod").ip_allowlist == ("10.0.1.0/24",)
    assert services.org.member("bob@acme.com").projects == {"support-bot": "member"}


def test_removing_people_from_the_file_offboards_them(make_services: Callable[..., Services]) -> None:
    services = make_services()
    apply.execute(apply.plan(parse_text(ORG, "org.yaml"), services.org, services.keys), services.org, "apply:test")
    bob, _ = services.keys.create("support-bot", owner=Owner("member", "bob@acme.com"))
    bot, _ = services.keys.create("support-bot", owner=Owner("service_account", "chatbot-prod"))
    smaller = ORG.replace("  - {email: bob@acme.com, role: member, projects: {support-bot: member}}\n", "")
    smaller = smaller[: smaller.index("service_accounts:")]
    changes = apply.plan(parse_text(smaller, "org.yaml"), services.org, services.keys)
    assert [c.describe() for c in changes] == [
        "- delete service account chatbot-prod\n    revokes 1 active key",
        "- delete member bob@acme.com\n    revokes 1 active key",
    ]
    apply.execute(changes, services.org, "apply:test")
    assert {k.id: k.status for k in services.keys.list_keys()} == {bob.id: "revoked", bot.id: "revoked"}


def test_a_changed_field_is_an_update_with_its_diff(make_services: Callable[..., Services]) -> None:
    services = make_services()
    apply.execute(apply.plan(parse_text(ORG, "org.yaml"), services.org, services.keys), services.org, "apply:test")
    changed = parse_text(
        ORG.replace("limits: {rpm: 600}", "limits: {rpm: 900}").replace("role: owner", "role: admin"), "o"
    )
    changes = apply.plan(changed, services.org, services.keys)
    assert [c.describe() for c in changes] == [
        "~ update project support-bot\n    limits: {'rpm': 600} -> {'rpm': 900}",
        "~ update member alice@acme.com\n    role: owner -> admin",
    ]


def test_moving_a_service_account_replaces_it(make_services: Callable[..., Services]) -> None:
    services = make_services()
    apply.execute(apply.plan(parse_text(ORG, "org.yaml"), services.org, services.keys), services.org, "apply:test")
    key, _ = services.keys.create("support-bot", owner=Owner("service_account", "chatbot-prod"))
    moved = parse_text(
        ORG.replace("{name: chatbot-prod, project: support-bot", "{name: chatbot-prod, project: research"), "o"
    )
    (change,) = apply.plan(moved, services.org, services.keys)
    assert change.action == "replace" and "revokes 1 active key" in change.details
    apply.execute([change], services.org, "apply:test")
    assert services.org.service_account("chatbot-prod").project == "research"
    assert services.keys.get(key.id).status == "revoked"


def test_starting_with_a_config_creates_and_updates_but_never_deletes(make_services: Callable[..., Services]) -> None:
    services = make_services(projects=[{"name": "one"}])
    services.org.create_project("cli:test", parse_text("projects: [{name: extra}]", "x").projects[0])
    again = make_services(projects=[{"name": "one", "environment": "staging"}])
    assert {p.name: p.environment for p in again.org.projects()} == {"extra": "development", "one": "staging"}
