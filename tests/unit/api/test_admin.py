"""The admin API's behaviour: authentication like /v1, keys shown once, errors in the envelope, limits, OpenAPI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from tests.unit.api.admin_org import error_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.unit.api.admin_org import MakeOrg

pytestmark = pytest.mark.anyio


async def test_me_says_who_calls_and_what_they_may_do(make_org: MakeOrg) -> None:
    async with make_org() as org:
        lead = await org.call("lead", "GET", "/me")
        reader = await org.call("reader", "GET", "/me")
    assert lead.status_code == 200
    assert lead.headers["x-bastion-request-id"].startswith("req_")
    body = lead.json()
    assert (body["member"]["email"], body["project"], body["roles"]) == (
        "lena@acme.com",
        "alpha",
        {"org": "member", "project": "admin"},
    )
    assert body["key"]["id"] == org.ids["lead_key"] and "hash" not in body["key"]
    assert {"keys.write", "service_accounts.write", "project.write"} <= set(body["actions"])
    assert "members.write" not in body["actions"]
    assert reader.json()["actions"] == [
        "org.read",
        "reports.read",
        "project.read",
        "events.read",
        "project_reports.read",
    ]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "invalid_api_key"),
        ({"Authorization": "Bearer bst_not-a-key"}, "invalid_api_key"),
        ({"Authorization": "Basic b2xpdmU6cGFzcw=="}, "invalid_api_key"),
    ],
)
async def test_requests_without_a_valid_key_are_refused(make_org: MakeOrg, headers: dict[str, str], code: str) -> None:
    async with make_org() as org:
        assert org.http is not None
        response = await org.http.get("/admin/v1/projects", headers=headers)
    assert (response.status_code, error_of(response)["code"]) == (401, code)
    assert "alpha" not in response.text


async def test_the_azure_style_api_key_header_works_too(make_org: MakeOrg) -> None:
    async with make_org() as org:
        assert org.http is not None
        response = await org.http.get("/admin/v1/me", headers={"api-key": org.keys["owner"]})
    assert response.json()["member"]["email"] == "olive@acme.com"


@pytest.mark.parametrize("role", ["sa", "project"])
async def test_only_a_members_key_may_use_the_admin_api(make_org: MakeOrg, role: str) -> None:
    async with make_org() as org:
        response = await org.call(role, "GET", "/me")
    error = error_of(response)
    assert (response.status_code, error["code"]) == (403, "permission_denied")
    assert "needs a member's key" in error["message"]


async def test_a_revoked_key_is_refused_on_the_next_request(make_org: MakeOrg) -> None:
    async with make_org() as org:
        assert (await org.call("member", "GET", "/projects")).status_code == 200
        revoked = await org.call("owner", "POST", "/projects/alpha/keys/{member_key}/revoke")
        refused = await org.call("member", "GET", "/projects")
    assert revoked.json()["status"] == "revoked"
    assert (refused.status_code, error_of(refused)["code"]) == (401, "key_revoked")


async def test_offboarding_a_member_refuses_their_key_on_the_next_request(make_org: MakeOrg) -> None:
    async with make_org() as org:
        assert (await org.call("lead", "GET", "/me")).status_code == 200
        removed = await org.call("owner", "DELETE", "/members/lena@acme.com")
        refused = await org.call("lead", "GET", "/me")
    assert removed.json()["keys_revoked"] == 1
    assert (refused.status_code, error_of(refused)["code"]) == (401, "key_revoked")


async def test_the_members_ip_allowlist_applies(make_org: MakeOrg) -> None:
    async with make_org() as org:
        fenced = await org.call("owner", "PATCH", "/members/max@acme.com", {"ip_allowlist": ["10.9.0.0/16"]})
        refused = await org.call("member", "GET", "/me")
    assert fenced.json()["ip_allowlist"] == ["10.9.0.0/16"]
    assert (refused.status_code, error_of(refused)["code"]) == (403, "ip_not_allowed")


async def test_a_new_key_is_shown_once_and_never_listed(make_org: MakeOrg) -> None:
    async with make_org() as org:
        created = await org.call("member", "POST", "/projects/alpha/keys", {"name": "laptop", "expires_in": "30d"})
        key = created.json()["key"]
        org.keys["laptop"] = key
        works = await org.call("laptop", "GET", "/me")
        listed = await org.call("owner", "GET", "/projects/alpha/keys")
        events = await org.call("owner", "GET", "/projects/alpha/events")
    record = created.json()["record"]
    assert created.status_code == 201 and key.startswith(record["prefix"])
    assert (record["principal"]["type"], record["name"], record["status"]) == ("member", "laptop", "active")
    assert works.json()["member"]["email"] == "max@acme.com"
    assert record["id"] in listed.text and key not in listed.text and key not in events.text
    assert events.json()["data"][0]["actor"] == "member:max@acme.com"


async def test_rotation_returns_the_replacement_once_and_the_old_key_keeps_working(make_org: MakeOrg) -> None:
    async with make_org() as org:
        rotated = await org.call("member", "POST", "/projects/alpha/keys/{own}/rotate", {"overlap": "1h"})
        org.keys["new"] = rotated.json()["key"]
        old = await org.call("member", "GET", "/me")
        new = await org.call("new", "GET", "/me")
    body = rotated.json()
    assert rotated.status_code == 201
    assert (body["previous"]["status"], body["previous"]["rotated_to"]) == ("rotating", body["record"]["id"])
    assert (old.status_code, new.status_code) == (200, 200)


async def test_a_patch_changes_only_what_it_names(make_org: MakeOrg) -> None:
    async with make_org() as org:
        await org.call("lead", "PATCH", "/projects/alpha", {"limits": {"rpm": 60}, "keys": {"max_age": "90d"}})
        patched = await org.call("lead", "PATCH", "/projects/alpha", {"limits": {"tpm": 1000}})
    assert patched.json()["limits"] == {"rpm": 60, "tpm": 1000}
    assert patched.json()["keys"] == {"max_age": "90d", "over_age": "warn", "limits": {}}


async def test_membership_changes_keep_roles_in_projects_the_key_cannot_see(make_org: MakeOrg) -> None:
    async with make_org() as org:
        shown = await org.call("owner", "PATCH", "/members/pat@acme.com", {"projects": {"alpha": "reader"}})
        assert org.services is not None
        stored = org.services.org.member("pat@acme.com")
    assert shown.json()["projects"] == {"alpha": "reader"}
    assert stored.projects == {"alpha": "reader", "beta": "admin"}


async def test_creating_a_project_returns_a_key_for_it(make_org: MakeOrg) -> None:
    async with make_org() as org:
        created = await org.call("admin", "POST", "/projects", {"name": "gamma", "environment": "staging"})
        org.keys["gamma"] = created.json()["key"]
        seen = await org.call("gamma", "GET", "/projects/gamma")
        hidden = await org.call("admin", "GET", "/projects/gamma")
    assert created.status_code == 201
    assert created.json()["record"]["project"] == "gamma"
    assert seen.json()["environment"] == "staging"
    assert hidden.status_code == 404


async def test_an_invite_is_accepted_with_its_token_once(make_org: MakeOrg) -> None:
    body = {"email": "nora@acme.com", "role": "member", "projects": {"alpha": "reader"}, "expires_in": "2d"}
    async with make_org() as org:
        assert org.http is not None
        invited = await org.call("owner", "POST", "/invites", body)
        token = {"token": invited.json()["token"]}
        accepted = await org.http.post("/admin/v1/invites/accept", json=token)
        again = await org.http.post("/admin/v1/invites/accept", json=token)
        listed = await org.call("reader", "GET", "/invites")
    assert invited.json()["invite"]["status"] == "pending"
    assert (accepted.status_code, accepted.json()["projects"]) == (200, {"alpha": "reader"})
    assert (again.status_code, error_of(again)["code"]) == (404, "not_found")
    assert token["token"] not in listed.text
    assert {i["email"]: i["status"] for i in listed.json()["data"]}["nora@acme.com"] == "accepted"


async def test_nobody_creates_or_rotates_a_key_that_acts_as_someone_else(make_org: MakeOrg) -> None:
    async with make_org() as org:
        created = await org.call(
            "owner", "POST", "/projects/alpha/keys", {"owner": {"kind": "member", "name": "sam@acme.com"}}
        )
        rotated = await org.call("owner", "POST", "/projects/alpha/keys/{sam_key}/rotate")
    for response in (created, rotated):
        assert (response.status_code, error_of(response)["code"]) == (403, "permission_denied")
        assert "acts as another member" in error_of(response)["message"]


BAD_INPUT: list[tuple[str, str, Any, str | None, str]] = [
    ("PATCH", "/projects/alpha", {"limits": {"rpm": 0}}, "limits.rpm", "invalid_parameter"),
    ("PATCH", "/projects/alpha", {"limits": {"rpm": "many"}}, "limits.rpm", "invalid_parameter"),
    ("PATCH", "/projects/alpha", {"colour": "red"}, "colour", "invalid_parameter"),
    ("PATCH", "/projects/alpha", {"environment": "prod"}, "environment", "invalid_parameter"),
    ("PATCH", "/projects/alpha", {"environment": None}, "environment", "invalid_parameter"),
    ("PATCH", "/projects/alpha", {"keys": {"max_age": "soon"}}, "keys.max_age", "invalid_parameter"),
    (
        "POST",
        "/projects/alpha/service-accounts",
        {"name": "b", "ip_allowlist": ["10.0.0.1/24"]},
        "ip_allowlist[0]",
        "invalid_parameter",
    ),
    (
        "POST",
        "/projects/alpha/service-accounts",
        {"permissions": ["chat.completions"]},
        "name",
        "missing_required_parameter",
    ),
    ("POST", "/members", {"email": "not-an-email", "role": "member"}, "email", "invalid_parameter"),
    ("PATCH", "/members/max@acme.com", {"role": "boss"}, "role", "invalid_parameter"),
    ("POST", "/projects/alpha/keys", {"expires_in": "soon"}, "expires_in", "invalid_parameter"),
    ("POST", "/projects/alpha/keys", {"owner": {"kind": "robot"}}, "owner.kind", "invalid_parameter"),
    ("GET", "/keys/due?within=7x", None, "within", "invalid_parameter"),
    ("GET", "/projects/alpha/events?limit=0", None, "limit", "invalid_parameter"),
]


@pytest.mark.parametrize(("method", "path", "body", "param", "code"), BAD_INPUT)
async def test_bad_input_is_a_400_naming_the_field(
    make_org: MakeOrg, method: str, path: str, body: Any, param: str, code: str
) -> None:
    async with make_org() as org:
        before = org.snapshot()
        response = await org.call("owner", method, path, body)
        after = org.snapshot()
    error = error_of(response)
    assert (response.status_code, error["code"], error["param"]) == (400, code, param)
    assert f"'{param}'" in error["message"]
    assert response.headers["x-bastion-request-id"]
    assert after == before


@pytest.mark.parametrize(
    ("content_type", "content", "code"),
    [
        ("application/json", b"{not json", "invalid_json"),
        ("application/json", b"[1]", "invalid_parameter"),
        ("text/plain", b'{"name": "bot-x"}', "invalid_parameter"),
        ("application/json", b"", "missing_required_parameter"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_a_400(
    make_org: MakeOrg, content_type: str, content: bytes, code: str
) -> None:
    async with make_org() as org:
        assert org.http is not None
        headers = {"Authorization": f"Bearer {org.keys['owner']}", "Content-Type": content_type}
        url = "/admin/v1/projects/alpha/service-accounts"
        response = await org.http.post(url, content=content, headers=headers)
    error = error_of(response)
    assert (response.status_code, error["code"], error["param"]) == (400, code, None)
    assert "JSON" in error["message"]


async def _chunks(count: int, size: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield b"a" * size


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_body_over_the_limit_is_a_413(make_org: MakeOrg, streamed: bool) -> None:
    async with make_org() as org:
        assert org.http is not None
        headers = {"Authorization": f"Bearer {org.keys['owner']}", "Content-Type": "application/json"}
        content = _chunks(12, 100_000) if streamed else b"{" + b" " * 1_200_000 + b"}"
        response = await org.http.post("/admin/v1/projects/alpha/service-accounts", content=content, headers=headers)
    assert (response.status_code, error_of(response)["code"]) == (413, "request_too_large")


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/admin/v1/nothing-here", 404, "not_found"),
        ("PUT", "/admin/v1/projects/alpha", 405, "method_not_allowed"),
        ("GET", "/admin/v1", 404, "not_found"),
    ],
)
async def test_routing_errors_use_the_envelope(
    make_org: MakeOrg, method: str, path: str, status: int, code: str
) -> None:
    async with make_org() as org:
        assert org.http is not None
        response = await org.http.request(method, path, headers={"Authorization": f"Bearer {org.keys['owner']}"})
    assert (response.status_code, error_of(response)["code"]) == (status, code)
    assert response.headers["x-bastion-request-id"]
    if status == 405:
        assert "GET" in response.headers["allow"]


async def test_admin_requests_are_rate_limited_per_key(make_org: MakeOrg) -> None:
    async with make_org(admin_rpm=3) as org:
        assert org.http is not None
        allowed = [await org.call("owner", "GET", "/me") for _ in range(3)]
        refused = await org.call("owner", "GET", "/me")
        other = await org.call("reader", "GET", "/me")
        anonymous = [await org.http.post("/admin/v1/invites/accept", json={"token": "bst_inv_x"}) for _ in range(4)]
    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert allowed[-1].headers["x-ratelimit-remaining-requests"] == "0"
    assert (refused.status_code, error_of(refused)["code"]) == (429, "rate_limit_exceeded")
    assert int(refused.headers["retry-after"]) >= 1
    assert other.status_code == 200
    assert [r.status_code for r in anonymous] == [404, 404, 404, 429]


async def test_openapi_lists_every_route(make_org: MakeOrg) -> None:
    async with make_org() as org:
        assert org.http is not None
        schema = await org.http.get("/admin/v1/openapi.json")
        docs = await org.http.get("/admin/v1/docs")
    paths = schema.json()["paths"]
    listed = {(method.upper(), path) for path, item in paths.items() for method in item}
    p, keys = "/admin/v1/projects/{name}", "/admin/v1/projects/{name}/keys"
    assert listed == {
        ("GET", "/admin/v1/me"),
        *(("GET", "/admin/v1/members"), ("POST", "/admin/v1/members")),
        *((m, "/admin/v1/members/{email}") for m in ("GET", "PATCH", "DELETE")),
        *(("GET", "/admin/v1/invites"), ("POST", "/admin/v1/invites"), ("POST", "/admin/v1/invites/accept")),
        ("DELETE", "/admin/v1/invites/{invite_id}"),
        *(("GET", "/admin/v1/projects"), ("POST", "/admin/v1/projects")),
        *((m, p) for m in ("GET", "PATCH", "DELETE")),
        *(("GET", p + "/service-accounts"), ("POST", p + "/service-accounts")),
        *((m, p + "/service-accounts/{account}") for m in ("GET", "PATCH", "DELETE")),
        *(("GET", keys), ("POST", keys), ("POST", keys + "/{key_id}/rotate"), ("POST", keys + "/{key_id}/revoke")),
        *(("GET", "/admin/v1/keys/due"), ("GET", p + "/events")),
        ("GET", "/admin/v1/reports/{name}"),
        *((method, "/admin/v1/" + kind) for method in ("GET", "POST") for kind in ("providers", "vendors")),
        *(
            (method, f"/admin/v1/{kind}/{{name}}")
            for method in ("GET", "PATCH", "DELETE")
            for kind in ("providers", "vendors")
        ),
    }
    components = schema.json()["components"]
    assert "limits" in str(components["schemas"]["ProjectPatch"])
    assert components["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    # durations are documented as Bastion reads them (24h), not as ISO 8601 (P1D), which it refuses
    assert components["schemas"]["KeyRotate"]["properties"]["overlap"]["default"] == "1d"
    assert '"format":"duration"' not in schema.text.replace(" ", "")
    assert docs.status_code == 200 and "/admin/v1/openapi.json" in docs.text
