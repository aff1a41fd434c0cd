"""Tenant isolation and the permission matrix over every admin route, for every kind of key of project alpha.

Keys of alpha may never read or change project beta's objects (404 whether or not they exist, never
a leak of beta's data); for alpha's own objects the matrix decides, and a refusal changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import pytest
from tests.unit.api.admin_org import MEMBER_ROLES, ROLES, error_of

from bastion.api.admin import ROUTES

if TYPE_CHECKING:
    from tests.unit.api.admin_org import MakeOrg

pytestmark = pytest.mark.anyio


class Case(NamedTuple):
    method: str
    route: str  # the route template under /admin/v1 this case exercises
    path: str
    body: Any = None
    forbidden: str = ""  # member roles refused with 403 before the target is looked up
    other: int = 404  # what the remaining member roles get

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


P, SA, KEYS = "/projects/{name}", "/projects/{name}/service-accounts/{account}", "/projects/{name}/keys"
ORG_WRITERS_ONLY = "lead member reader"
# Requests that name project beta's objects, directly or through alpha's paths.
TOWARDS_BETA = [
    Case("GET", P, "/projects/beta"),
    Case("PATCH", P, "/projects/beta", {"environment": "production"}),
    Case("DELETE", P, "/projects/beta"),
    Case("POST", "/projects", "/projects", {"name": "beta"}, ORG_WRITERS_ONLY, other=409),
    Case("GET", P + "/service-accounts", "/projects/beta/service-accounts"),
    Case("POST", P + "/service-accounts", "/projects/beta/service-accounts", {"name": "intruder"}),
    Case("GET", SA, "/projects/beta/service-accounts/bot-b"),
    Case("PATCH", SA, "/projects/beta/service-accounts/bot-b", {"limits": {"rpm": 1}}),
    Case("DELETE", SA, "/projects/beta/service-accounts/bot-b"),
    Case("GET", SA, "/projects/alpha/service-accounts/bot-b"),
    Case("PATCH", SA, "/projects/alpha/service-accounts/bot-b", {"limits": {"rpm": 1}}, "member reader"),
    Case("DELETE", SA, "/projects/alpha/service-accounts/bot-b", None, "member reader"),
    Case("GET", KEYS, "/projects/beta/keys"),
    Case("POST", KEYS, "/projects/beta/keys", {"owner": {"kind": "project"}}),
    Case("POST", KEYS, "/projects/alpha/keys", {"owner": {"kind": "project", "name": "beta"}}),
    Case(
        "POST", KEYS, "/projects/alpha/keys", {"owner": {"kind": "service_account", "name": "bot-b"}}, "member reader"
    ),
    Case(
        "POST",
        KEYS,
        "/projects/alpha/keys",
        {"owner": {"kind": "member", "name": "bee@acme.com"}},
        " ".join(MEMBER_ROLES),
    ),
    Case("POST", KEYS + "/{key_id}/rotate", "/projects/beta/keys/{b_key}/rotate"),
    Case("POST", KEYS + "/{key_id}/rotate", "/projects/alpha/keys/{bot_key}/rotate"),
    Case("POST", KEYS + "/{key_id}/revoke", "/projects/beta/keys/{bee_key}/revoke"),
    Case("POST", KEYS + "/{key_id}/revoke", "/projects/alpha/keys/{b_key}/revoke"),
    Case("GET", P + "/events", "/projects/beta/events"),
    Case("GET", "/members/{email}", "/members/bee@acme.com"),
    Case("PATCH", "/members/{email}", "/members/bee@acme.com", {"limits": {"rpm": 1}}, ORG_WRITERS_ONLY),
    Case("DELETE", "/members/{email}", "/members/bee@acme.com", None, ORG_WRITERS_ONLY),
    Case("PATCH", "/members/{email}", "/members/max@acme.com", {"projects": {"beta": "admin"}}, ORG_WRITERS_ONLY),
    Case(
        "POST",
        "/members",
        "/members",
        {"email": "x@acme.com", "role": "member", "projects": {"beta": "admin"}},
        ORG_WRITERS_ONLY,
    ),
    Case(
        "POST",
        "/invites",
        "/invites",
        {"email": "x@acme.com", "role": "member", "projects": {"beta": "member"}},
        ORG_WRITERS_ONLY,
    ),
    Case("DELETE", "/invites/{invite_id}", "/invites/{inv_b}", None, ORG_WRITERS_ONLY),
]
# Reads that succeed for every member key and must show nothing of beta.
LISTS = [
    Case("GET", "/me", "/me"),
    Case("GET", "/members", "/members"),
    Case("GET", "/invites", "/invites"),
    Case("GET", "/projects", "/projects"),
    Case("GET", "/keys/due", "/keys/due?within=3650d"),
    Case("GET", P + "/events", "/projects/alpha/events"),
    Case("GET", KEYS, "/projects/alpha/keys"),
    Case("GET", P + "/service-accounts", "/projects/alpha/service-accounts"),
]


def expected_towards_beta(case: Case, role: str) -> int:
    if role not in MEMBER_ROLES or role in case.forbidden.split():
        return 403
    return case.other


# Reports are isolated by role rather than by key alone (organisation readers see every project): their
# isolation and matrix cases are in test_reports_api.py. Providers and vendors belong to no project (the
# upstreams, the same for every key): test_admin_routing.py checks who may read and change them.
ELSEWHERE = {("GET", "/reports/{name}")} | {
    (route.method, route.path) for route in ROUTES if route.path.startswith(("/providers", "/vendors"))
}


def test_every_route_with_a_key_has_isolation_cases() -> None:
    covered = {(case.method, case.route) for case in TOWARDS_BETA + LISTS} | ELSEWHERE
    keyed = {(route.method, route.path) for route in ROUTES if route.path != "/invites/accept"}
    assert keyed - covered == set()


@pytest.mark.parametrize("role", ROLES)
async def test_keys_of_alpha_never_reach_beta(make_org: MakeOrg, role: str) -> None:
    async with make_org() as org:
        before = org.snapshot()
        outcomes = []
        for case in TOWARDS_BETA:
            response = await org.call(role, case.method, case.path, case.body)
            sent = org.url(role, case.path) + repr(case.body)  # an error may repeat what was asked, nothing more
            shown = [marker for marker in org.markers if marker in response.text and marker not in sent]
            outcomes.append((case.label, response.status_code, shown))
            error_of(response)
        for case in LISTS:
            response = await org.call(role, case.method, case.path)
            shown = [marker for marker in org.markers if marker in response.text]
            outcomes.append((case.label, response.status_code, shown))
        after = org.snapshot()
    expected = [(c.label, expected_towards_beta(c, role), []) for c in TOWARDS_BETA]
    expected += [(c.label, 200 if role in MEMBER_ROLES else 403, []) for c in LISTS]
    assert outcomes == expected
    assert after == before


async def test_another_projects_objects_look_exactly_like_missing_ones(make_org: MakeOrg) -> None:
    pairs = [  # path with {x}, beta's object (an id placeholder or a name), a name that does not exist
        ("GET", "/projects/{x}", "beta", "nope"),
        ("GET", "/projects/{x}/keys", "beta", "nope"),
        ("GET", "/projects/alpha/service-accounts/{x}", "bot-b", "nope"),
        ("POST", "/projects/alpha/keys/{x}/revoke", "b_key", "key_nope"),
        ("GET", "/members/{x}", "bee@acme.com", "nope@acme.com"),
        ("DELETE", "/invites/{x}", "inv_b", "inv_nope"),
    ]
    async with make_org() as org:
        for method, path, real, ghost in pairs:
            name = org.ids.get(real, real)
            seen = await org.call("owner", method, path.replace("{x}", name))
            missing = await org.call("owner", method, path.replace("{x}", ghost))
            assert (seen.status_code, missing.status_code) == (404, 404)
            assert error_of(seen)["message"] == error_of(missing)["message"].replace(ghost, name)


class Rule(NamedTuple):
    method: str
    path: str
    body: Any
    allowed: str  # roles whose key may do it; service-account and project keys never may


READ_ALL = "owner admin lead member reader"
ORG_ADMINS = "owner admin"
PROJECT_ADMINS = "owner admin lead"
MATRIX = [
    Rule("GET", "/me", None, READ_ALL),
    Rule("GET", "/members", None, READ_ALL),
    Rule("GET", "/members/sam@acme.com", None, READ_ALL),
    Rule("POST", "/members", {"email": "new@acme.com", "role": "member", "projects": {"alpha": "reader"}}, ORG_ADMINS),
    Rule("POST", "/members", {"email": "new@acme.com", "role": "owner"}, "owner"),
    Rule("PATCH", "/members/sam@acme.com", {"limits": {"rpm": 7}}, ORG_ADMINS),
    Rule("PATCH", "/members/adam@acme.com", {"role": "owner"}, "owner"),
    Rule("PATCH", "/members/olive@acme.com", {"limits": {"rpm": 5}}, "owner"),
    Rule("DELETE", "/members/sam@acme.com", None, ORG_ADMINS),
    Rule("GET", "/invites", None, READ_ALL),
    Rule("POST", "/invites", {"email": "z@acme.com", "role": "member", "projects": {"alpha": "member"}}, ORG_ADMINS),
    Rule("POST", "/invites", {"email": "z@acme.com", "role": "owner"}, "owner"),
    Rule("DELETE", "/invites/{inv_a}", None, ORG_ADMINS),
    Rule("GET", "/projects", None, READ_ALL),
    Rule("POST", "/projects", {"name": "gamma"}, ORG_ADMINS),
    Rule("GET", "/projects/alpha", None, READ_ALL),
    Rule("PATCH", "/projects/alpha", {"environment": "production"}, PROJECT_ADMINS),
    Rule("DELETE", "/projects/alpha", None, ORG_ADMINS),
    Rule("GET", "/projects/alpha/service-accounts", None, READ_ALL),
    Rule("POST", "/projects/alpha/service-accounts", {"name": "bot-new"}, PROJECT_ADMINS),
    Rule("GET", "/projects/alpha/service-accounts/bot-a", None, READ_ALL),
    Rule("PATCH", "/projects/alpha/service-accounts/bot-a", {"limits": {"rpm": 9}}, PROJECT_ADMINS),
    Rule("DELETE", "/projects/alpha/service-accounts/bot-a", None, PROJECT_ADMINS),
    Rule("GET", "/projects/alpha/keys", None, READ_ALL),
    Rule("POST", "/projects/alpha/keys", {}, "owner admin lead member"),
    Rule("POST", "/projects/alpha/keys", {"owner": {"kind": "project"}}, PROJECT_ADMINS),
    Rule("POST", "/projects/alpha/keys", {"owner": {"kind": "service_account", "name": "bot-a"}}, PROJECT_ADMINS),
    Rule("POST", "/projects/alpha/keys", {"owner": {"kind": "member", "name": "sam@acme.com"}}, ""),
    Rule("POST", "/projects/alpha/keys/{own}/rotate", {"overlap": "1h"}, "owner admin lead member"),
    Rule("POST", "/projects/alpha/keys/{own}/revoke", None, "owner admin lead member"),
    Rule("POST", "/projects/alpha/keys/{sa_key}/rotate", None, PROJECT_ADMINS),
    Rule("POST", "/projects/alpha/keys/{sa_key}/revoke", None, PROJECT_ADMINS),
    Rule("POST", "/projects/alpha/keys/{sam_key}/rotate", None, ""),
    Rule("POST", "/projects/alpha/keys/{sam_key}/revoke", None, PROJECT_ADMINS),
    Rule("GET", "/keys/due", None, READ_ALL),
    Rule("GET", "/projects/alpha/events", None, READ_ALL),
]
WRITES = [(rule, role) for rule in MATRIX if rule.method != "GET" for role in rule.allowed.split()]


def test_readers_read_everything_and_change_nothing() -> None:
    assert all("reader" in rule.allowed.split() for rule in MATRIX if rule.method == "GET")
    assert not any("reader" in rule.allowed.split() for rule in MATRIX if rule.method != "GET")


@pytest.mark.parametrize("role", ROLES)
async def test_the_matrix_refuses_and_nothing_changes(make_org: MakeOrg, role: str) -> None:
    """Every read the role may make answers 200; every other request is 403 and leaves the store as it was."""
    async with make_org() as org:
        before = org.snapshot()
        outcomes = []
        for rule in MATRIX:
            if rule.method == "GET" or role not in rule.allowed.split():
                response = await org.call(role, rule.method, rule.path, rule.body)
                outcomes.append((rule.method, rule.path, rule.body, response.status_code))
        after = org.snapshot()
    assert outcomes == [
        (rule.method, rule.path, rule.body, 200 if role in rule.allowed.split() else 403)
        for rule in MATRIX
        if rule.method == "GET" or role not in rule.allowed.split()
    ]
    assert after == before


@pytest.mark.parametrize(
    ("rule", "role"), WRITES, ids=[f"{r.method} {r.path} {r.body} as {role}" for r, role in WRITES]
)
async def test_the_matrix_allows_and_the_change_is_made(make_org: MakeOrg, rule: Rule, role: str) -> None:
    async with make_org() as org:
        before = org.snapshot()
        response = await org.call(role, rule.method, rule.path, rule.body)
        after = org.snapshot()
    assert response.status_code in (200, 201), response.text
    assert after[-1] > before[-1]  # one more admin event at least: the change was recorded
    assert after[:-1] != before[:-1]
