"""``GET /admin/v1/reports/{name}``: the reports over HTTP, isolated by role, refused without reports.read.

Organisation owners and readers see every project; a project's admin sees that project only (another
project is the same 404 as a missing one); other members and non-member keys get 403.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest
from tests.harness import in_process
from tests.unit.api.admin_org import error_of
from tests.unit.compliance.activity import Activity, build_activity, copy_store, settings_for

from bastion.compliance import registry

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    import httpx

pytestmark = pytest.mark.anyio
BETA_KEYS = ("beta", "botb", "soon", "short", "dan", "dan2")


@pytest.fixture(scope="session")
def activity(tmp_path_factory: pytest.TempPathFactory) -> Activity:
    return build_activity(tmp_path_factory.mktemp("api-activity"))


@pytest.fixture
def gateway(activity: Activity, tmp_path: Path) -> Callable[[], Any]:
    """``async with gateway() as get``: ``await get(role, path)`` calls the admin API with that role's key."""

    @asynccontextmanager
    async def start() -> AsyncIterator[Callable[..., Any]]:
        database = copy_store(activity, tmp_path / "store")
        async with in_process(settings_for(tmp_path / "home", database)) as (_, http):

            async def get(role: str, path: str) -> httpx.Response:
                headers = {"Authorization": f"Bearer {activity.keys[role]}"}
                return await http.get("/admin/v1/reports" + path, headers=headers)

            yield get

    return start


def beta_markers(activity: Activity) -> list[str]:
    """Strings only project beta's data contains."""
    keys = [activity.ids[label] for label in BETA_KEYS] + [activity.keys[label][:12] for label in BETA_KEYS[:4]]
    return ["beta", "bot-b", activity.ids["dan@acme.com"], *keys]


def subject(name: str) -> str:
    return "&subject=dan@acme.com" if name == "dsr" else ""


@pytest.mark.parametrize("name", list(registry.REPORTS))
async def test_a_project_admin_sees_only_their_project(
    gateway: Callable[[], Any], activity: Activity, name: str
) -> None:
    async with gateway() as get:
        response = await get("lee", f"/{name}?format=json{subject(name)}")
    assert response.status_code == 200, response.text
    assert response.json()["project"] == "alpha"
    assert [marker for marker in beta_markers(activity) if marker in response.text] == []


async def test_another_project_is_the_same_404_as_a_missing_one(gateway: Callable[[], Any]) -> None:
    async with gateway() as get:
        beta = await get("lee", "/usage?project=beta")
        missing = await get("lee", "/usage?project=nope")
        own = await get("lee", "/usage?project=alpha")
    assert (beta.status_code, missing.status_code, own.status_code) == (404, 404, 200)
    assert error_of(beta)["message"] == error_of(missing)["message"].replace("nope", "beta")


@pytest.mark.parametrize("role", ["ann", "cat"])  # the owner and an organisation reader
async def test_organisation_readers_see_every_project(gateway: Callable[[], Any], role: str) -> None:
    async with gateway() as get:
        everything = (await get(role, "/usage")).json()
        beta = (await get(role, "/usage?project=beta")).json()
    assert {row["project"] for row in everything["sections"]["by_project"]["rows"]} == {"alpha", "beta"}
    assert (everything["project"], everything["summary"]["requests"]) == (None, 9)
    assert (beta["project"], beta["summary"]["requests"]) == ("beta", 4)


@pytest.mark.parametrize(
    ("role", "message"),
    [
        ("bob", "'project_reports.read'"),  # a project member: neither report action
        ("bota", "needs a member's key"),
        ("beta", "needs a member's key"),
    ],
)
async def test_roles_without_reports_read_get_403(gateway: Callable[[], Any], role: str, message: str) -> None:
    async with gateway() as get:
        refused = await get(role, "/usage")
        beta = await get(role, "/usage?project=beta")
    assert (refused.status_code, error_of(refused)["code"]) == (403, "permission_denied")
    assert message in error_of(refused)["message"]
    assert beta.status_code == (404 if role == "bob" else 403)  # the project is checked before the permission


async def test_markdown_and_the_dsr(gateway: Callable[[], Any], activity: Activity) -> None:
    async with gateway() as get:
        markdown = await get("cat", "/soc2?format=markdown")
        dsr = (await get("ann", "/dsr?subject=bob@acme.com")).json()
        scoped = (await get("lee", "/dsr?subject=dan@acme.com")).json()
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert (
        markdown.text.startswith("# SOC 2 evidence pack\n")
        and "## CC9.1 Vendor and business-partner risk" in markdown.text
    )
    assert (dsr["summary"]["status"], dsr["summary"]["entries_linked"]) == ("linked", 11)
    assert scoped["sections"]["entries"]["rows"] == []  # dan acted only in beta, which lee's key cannot see


@pytest.mark.parametrize(
    ("path", "status", "param"),
    [
        ("/chargeback", 404, None),
        ("/usage?format=xml", 400, "format"),
        ("/usage?subject=bob@acme.com", 400, "subject"),
        ("/dsr", 400, "subject"),
        ("/usage?since=yesterday", 400, "since"),
    ],
)
async def test_bad_requests(gateway: Callable[[], Any], path: str, status: int, param: str | None) -> None:
    async with gateway() as get:
        response = await get("ann", path)
    assert (response.status_code, error_of(response)["param"]) == (status, param)
