"""`/admin/v1/providers` and `/admin/v1/vendors`: where data may go, readable by every member, changed by none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from tests.unit.api.admin_org import error_of

if TYPE_CHECKING:
    from tests.unit.api.admin_org import MakeOrg

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
        changed = await org.call("owner", "POST", "/providers", {"name": "x"})
    listed = providers.json()["data"]
    assert [(p["name"], p["residency"], p["vendor"], p["circuit"]["state"]) for p in listed] == [
        ("eu-1", "eu", "acme-cloud", "closed"),
        ("local", "local", None, "closed"),
    ]
    assert one.json()["region"] == "eu-west"
    assert (missing.status_code, error_of(missing)["code"]) == (404, "not_found")
    (vendor,) = vendors.json()["data"]
    standing = {item["type"]: (item["status"], item["days_left"]) for item in vendor["attestations"]}
    assert standing == {"dpa": ("valid", 400), "zdr": ("expiring", 10), "baa": ("expired", -1)}
    assert changed.status_code == 405  # declared in bastion.yaml only


async def test_keys_that_are_not_a_members_cannot_read_them(make_org: MakeOrg) -> None:
    async with make_org(FILE) as org:
        refused = [
            await org.call(role, "GET", path) for role in ("sa", "project") for path in ("/providers", "/vendors")
        ]
    assert {(response.status_code, error_of(response)["code"]) for response in refused} == {(403, "permission_denied")}
