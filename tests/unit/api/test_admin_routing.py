"""`/admin/v1/providers` and `/admin/v1/vendors`: where data may go, readable by every member, changed by
owners and admins (except what bastion.yaml declares), and routed by from the next request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from tests.unit.api.admin_org import error_of

if TYPE_CHECKING:
    import httpx
    from tests.unit.api.admin_org import AdminOrg, MakeOrg

pytestmark = pytest.mark.anyio
TODAY = datetime.now(UTC).date()
FILE = {
    "vendors": [
        {
            "name": "acme-cloud",
            "attestations": [
                {"type": "dpa", "expires": str(TODAY + timedelta(days=400))},
                {"type": "zdr", "expires": str(TODAY + timedelta(days=10))},
                {"type": "baa", "expires": str(TODAY - timedelta(days=1))},
            ],
        }
    ],
    "providers": [
        {
            "name": "eu-1",
            "kind": "echo",
            "vendor": "acme-cloud",
            "residency": "eu",
            "region": "eu-west",
            "models": ["echo-1"],
            "priority": 1,
        },
        {"name": "local", "kind": "echo", "models": ["echo-2"]},
    ],
}


async def test_providers_and_vendors_are_listed_with_their_standing(make_org: MakeOrg) -> None:
    async with make_org(FILE) as org:
        providers = await org.call("reader", "GET", "/providers")
        one = await org.call("member", "GET", "/providers/eu-1")
        missing = await org.call("member", "GET", "/providers/nope")
        vendors = await org.call("reader", "GET", "/vendors")
        shadowed = await org.call("owner", "POST", "/providers", {"name": "eu-1", "kind": "echo", "models": ["x"]})
        changed = await org.call("owner", "PATCH", "/providers/eu-1", {"priority": 5})
        removed = await org.call("admin", "DELETE", "/vendors/acme-cloud")
    listed = providers.json()["data"]
    assert [(p["name"], p["residency"], p["vendor"], p["source"], p["circuit"]["state"]) for p in listed] == [
        ("eu-1", "eu", "acme-cloud", "config", "closed"),
        ("local", "local", None, "config", "closed"),
    ]
    assert one.json()["region"] == "eu-west"
    assert (missing.status_code, error_of(missing)["code"]) == (404, "not_found")
    (vendor,) = vendors.json()["data"]
    standing = {item["type"]: (item["status"], item["days_left"]) for item in vendor["attestations"]}
    assert standing == {"dpa": ("valid", 400), "zdr": ("expiring", 10), "baa": ("expired", -1)}
    assert vendor["attestations"][0]["evidence"] is None
    # what the file declares stays as the file says
    for refused in (shadowed, changed, removed):
        assert (refused.status_code, error_of(refused)["code"]) == (409, "conflict")
        assert "bastion.yaml" in error_of(refused)["message"]


async def test_keys_that_are_not_a_members_cannot_read_them(make_org: MakeOrg) -> None:
    async with make_org(FILE) as org:
        refused = [
            await org.call(role, "GET", path) for role in ("sa", "project") for path in ("/providers", "/vendors")
        ]
    assert {(response.status_code, error_of(response)["code"]) for response in refused} == {(403, "permission_denied")}


VENDOR = {
    "name": "nordic-ai",
    "attestations": [
        {
            "type": "dpa",
            "expires": str(TODAY + timedelta(days=200)),
            "evidence": {"document": "dpa.pdf", "sha256": "ab" * 32},
        }
    ],
}
PROVIDER = {"name": "eu-2", "kind": "echo", "vendor": "nordic-ai", "residency": "eu", "models": {"echo-3": "echo-3"}}


async def chat(org: AdminOrg, model: str) -> httpx.Response:
    assert org.http is not None
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}]}
    return await org.http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {org.keys['sa']}"})


async def test_providers_added_changed_and_removed_over_the_api_are_routed_by_at_once(make_org: MakeOrg) -> None:
    async with make_org(FILE) as org:
        before = await chat(org, "echo-3")
        vendor = await org.call("owner", "POST", "/vendors", VENDOR)
        created = await org.call("owner", "POST", "/providers", PROVIDER)
        listed = (await org.call("reader", "GET", "/providers")).json()["data"]
        routed = await chat(org, "echo-3")
        patched = await org.call("admin", "PATCH", "/providers/eu-2", {"models": ["echo-4"], "weight": 3})
        renamed = [await chat(org, "echo-3"), await chat(org, "echo-4")]
        in_use = await org.call("owner", "DELETE", "/vendors/nordic-ai")
        deleted = await org.call("owner", "DELETE", "/providers/eu-2")
        gone = [await chat(org, "echo-4"), await org.call("member", "GET", "/providers/eu-2")]
        vendor_deleted = await org.call("owner", "DELETE", "/vendors/nordic-ai")
        assert org.services is not None
        events = [(e["action"], e["actor"], e["target_id"]) for e in org.services.org.events(limit=6)]
    assert (before.status_code, error_of(before)["code"]) == (404, "model_not_found")
    assert vendor.status_code == 201
    assert vendor.json()["attestations"][0]["evidence"] == {"document": "dpa.pdf", "sha256": "ab" * 32}
    assert created.status_code == 201
    assert (created.json()["source"], created.json()["active"], created.json()["residency"]) == ("admin", True, "eu")
    assert [p["name"] for p in listed] == ["eu-1", "local", "eu-2"]
    assert routed.status_code == 200
    assert routed.json()["model"] == "echo-3"
    assert patched.status_code == 200
    assert (patched.json()["models"], patched.json()["weight"], patched.json()["vendor"]) == (
        {"echo-4": "echo-4"},
        3,
        "nordic-ai",
    )
    assert [r.status_code for r in renamed] == [404, 200]
    assert (in_use.status_code, error_of(in_use)["code"]) == (409, "conflict")
    assert "eu-2" in error_of(in_use)["message"]
    assert deleted.json() == {"name": "eu-2", "deleted": True}
    assert [r.status_code for r in gone] == [404, 404]
    assert vendor_deleted.status_code == 200
    owner, admin = "member:olive@acme.com", "member:adam@acme.com"
    assert events == [
        ("vendor.delete", owner, "nordic-ai"),
        ("provider.delete", owner, "eu-2"),
        ("provider.update", admin, "eu-2"),
        ("provider.create", owner, "eu-2"),
        ("vendor.create", owner, "nordic-ai"),
        *events[5:],
    ]


@pytest.mark.parametrize("role", ["lead", "member", "reader", "sa", "project"])
async def test_only_owners_and_admins_change_providers_and_vendors(make_org: MakeOrg, role: str) -> None:
    async with make_org(FILE) as org:
        refused = [
            await org.call(role, "POST", "/vendors", VENDOR),
            await org.call(role, "POST", "/providers", {**PROVIDER, "vendor": None}),
            await org.call(role, "DELETE", "/providers/local"),
        ]
        listed = (await org.call("owner", "GET", "/providers")).json()["data"]
    assert {(r.status_code, error_of(r)["code"]) for r in refused} == {(403, "permission_denied")}
    assert [p["name"] for p in listed] == ["eu-1", "local"]


async def test_bad_providers_are_refused_with_the_field_and_the_fix(make_org: MakeOrg) -> None:
    env: dict[str, str] = {}
    keyed = {**PROVIDER, "kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1", "vendor": None}
    async with make_org(FILE, env) as org:
        unknown_vendor = await org.call("owner", "POST", "/providers", PROVIDER)
        no_key = await org.call("owner", "POST", "/providers", {**keyed, "api_key_env": "NORDIC_KEY"})
        no_url = await org.call("owner", "POST", "/providers", {**keyed, "base_url": None})
        bad_kind = await org.call("owner", "POST", "/providers", {**keyed, "kind": "gemini"})
        env["NORDIC_KEY"] = "sk-nordic-secret"
        keyed_ok = await org.call("owner", "POST", "/providers", {**keyed, "api_key_env": "NORDIC_KEY"})
        twice = await org.call("owner", "POST", "/providers", {**keyed, "api_key_env": "NORDIC_KEY"})
        bad_patch = await org.call("owner", "PATCH", "/providers/eu-2", {"weight": 0})
        missing = await org.call("owner", "PATCH", "/providers/nope", {"weight": 2})
        stored = (await org.call("owner", "GET", "/providers/eu-2")).json()
    assert (unknown_vendor.status_code, error_of(unknown_vendor)["param"]) == (400, "vendor")
    assert "POST /admin/v1/vendors" in error_of(unknown_vendor)["message"]
    assert (no_key.status_code, error_of(no_key)["param"]) == (400, "api_key_env")
    assert "NORDIC_KEY" in error_of(no_key)["message"]
    assert no_url.status_code == 400
    assert "base_url" in error_of(no_url)["message"]
    assert bad_kind.status_code == 400
    assert keyed_ok.status_code == 201, keyed_ok.text
    assert "sk-nordic-secret" not in keyed_ok.text
    assert (twice.status_code, error_of(twice)["code"]) == (409, "conflict")
    assert bad_patch.status_code == 400
    assert (missing.status_code, error_of(missing)["code"]) == (404, "not_found")
    assert (stored["api_key_env"], stored["weight"]) == ("NORDIC_KEY", 1)
