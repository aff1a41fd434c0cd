from __future__ import annotations

import json
from typing import TYPE_CHECKING

from bastion.services import local_actor

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from bastion.services import Services
    from conftest import Ran

ORG = """\
providers:
  - {name: local, kind: echo, models: [echo-1]}
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
BOB = "  - {email: bob@acme.com, role: member, projects: {support-bot: member}}\n"


def _write(tmp_path: Path, text: str) -> str:
    """Write the organisation file where $BASTION_CONFIG points, so that other commands read it too."""
    path = tmp_path / "bastion.yaml"
    path.write_text(text)
    return str(path)


def test_dry_run_prints_the_plan_and_changes_nothing(cli: Callable[..., Ran], store: Services, tmp_path: Path) -> None:
    ran = cli("apply", "-f", _write(tmp_path, ORG), "--dry-run")
    assert ran.code == 0, ran.err
    blocks = ran.out.split("\n+ ")
    assert blocks[0] == "+ create project support-bot\n    environment: production\n    key_over_age: warn\n" + (
        "    limits: {'rpm': 600}"
    )
    assert "create member bob@acme.com\n    projects: {'support-bot': 'member'}\n    role: member" in ran.out
    assert "create service account chatbot-prod\n" in ran.out
    assert ran.out.endswith("\nPlan: 5 to create, 0 to update, 0 to delete.\n")
    assert (store.org.projects(), store.org.members(), store.org.service_accounts()) == ([], [], [])
    assert store.org.events() == []


def test_apply_carries_out_the_plan_and_again_changes_nothing(
    cli: Callable[..., Ran], store: Services, tmp_path: Path
) -> None:
    path = _write(tmp_path, ORG)
    ran = cli("apply", "-f", path)
    assert ran.code == 0, ran.err
    assert "+ create project research" in ran.out
    assert ran.out.endswith("Plan: 5 to create, 0 to update, 0 to delete.\nApplied: 5 created, 0 updated, 0 deleted.\n")
    assert [p.name for p in store.org.projects()] == ["research", "support-bot"]
    assert store.org.member("bob@acme.com").projects == {"support-bot": "member"}
    assert store.org.service_account("chatbot-prod").ip_allowlist == ("10.0.1.0/24",)
    events = store.org.events()
    assert len(events) == 5 and {e["actor"] for e in events} == {local_actor()}
    ran = cli("apply", "-f", path)
    assert (ran.code, ran.out) == (0, f"No changes: the store matches {path}.\n")
    assert len(store.org.events()) == 5


def test_removing_people_from_the_file_revokes_their_keys(
    cli: Callable[..., Ran], store: Services, tmp_path: Path
) -> None:
    cli("apply", "-f", _write(tmp_path, ORG))
    assert cli("keys", "create", "-p", "support-bot", "--member", "bob@acme.com").code == 0
    assert cli("keys", "create", "-p", "support-bot", "--service-account", "chatbot-prod").code == 0
    smaller = ORG.replace(BOB, "")
    path = _write(tmp_path, smaller[: smaller.index("service_accounts:")])
    ran = cli("apply", "-f", path, "--dry-run")
    assert "- delete service account chatbot-prod\n    revokes 1 active key\n" in ran.out
    assert "- delete member bob@acme.com\n    revokes 1 active key\n" in ran.out
    assert "Plan: 0 to create, 0 to update, 2 to delete." in ran.out
    assert {k.status for k in store.keys.list_keys()} == {"active"}
    ran = cli("apply", "-f", path)
    assert ran.code == 0 and "Applied: 0 created, 0 updated, 2 deleted." in ran.out
    assert {k.principal_type: k.status for k in store.keys.list_keys()} == {
        "member": "revoked",
        "service_account": "revoked",
    }
    assert [m.email for m in store.org.members()] == ["alice@acme.com"]


def test_a_changed_field_is_an_update_with_its_diff(cli: Callable[..., Ran], tmp_path: Path) -> None:
    cli("apply", "-f", _write(tmp_path, ORG))
    changed = ORG.replace("rpm: 600", "rpm: 900").replace("role: owner", "role: admin")
    ran = cli("apply", "-f", _write(tmp_path, changed), "--dry-run")
    assert ran.out == (
        "~ update project support-bot\n    limits: {'rpm': 600} -> {'rpm': 900}\n"
        "~ update member alice@acme.com\n    role: owner -> admin\n"
        "\nPlan: 0 to create, 2 to update, 0 to delete.\n"
    )


def test_moving_a_service_account_counts_as_a_delete_and_a_create(cli: Callable[..., Ran], tmp_path: Path) -> None:
    cli("apply", "-f", _write(tmp_path, ORG))
    moved = ORG.replace("{name: chatbot-prod, project: support-bot", "{name: chatbot-prod, project: research")
    ran = cli("apply", "-f", _write(tmp_path, moved), "--dry-run")
    assert ran.out.startswith("± replace service account chatbot-prod\n    project: support-bot -> research\n")
    assert "Plan: 1 to create, 0 to update, 1 to delete." in ran.out


def test_apply_as_json(cli: Callable[..., Ran], store: Services, tmp_path: Path) -> None:
    ran = cli("apply", "-f", _write(tmp_path, ORG), "--dry-run", "--json")
    plan = json.loads(ran.out)
    assert (plan["create"], plan["update"], plan["delete"], plan["applied"]) == (5, 0, 0, False)
    assert plan["changes"][0] == {
        "action": "create",
        "kind": "project",
        "name": "support-bot",
        "details": ["environment: production", "key_over_age: warn", "limits: {'rpm': 600}"],
    }
    assert store.org.projects() == []
    assert json.loads(cli("apply", "-f", _write(tmp_path, ORG), "--json").out)["applied"] is True
    assert len(store.org.projects()) == 2


def test_a_bad_file_is_refused_with_its_line(cli: Callable[..., Ran], tmp_path: Path) -> None:
    path = _write(tmp_path, ORG.replace("role: owner", "role: boss"))
    ran = cli("apply", "-f", path)
    assert ran.code == 2
    assert ran.err.startswith(f"error: {path}:9: members[0].role: Input should be 'owner'")
    ran = cli("apply", "-f", str(tmp_path / "missing.yaml"))
    assert ran.code == 2 and "cannot read the config file" in ran.err and "Traceback" not in ran.err
