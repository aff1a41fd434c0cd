"""The audit API: signed checkpoints, the verifier key and proofs for anyone; entries for members who may read them."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import pytest
from tests.harness import in_process, runtime_of
from tests.unit.api.admin_org import error_of

from bastion.audit.checkpoint import Verifier, verify_note
from bastion.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from bastion.config import ProjectConfig

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    import httpx
    from tests.unit.api.admin_org import AdminOrg, MakeOrg

    from bastion.app import BastionApp
    from bastion.config import Settings

pytestmark = pytest.mark.anyio


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


async def grow(app: BastionApp, keys: int) -> None:
    """Add entries (one admin event per key created) and sign a checkpoint of them."""
    runtime = runtime_of(app)
    for _ in range(keys):
        runtime.services.keys.create("p", actor="cli:test")
    assert await runtime.checkpointer.tick() is not None


@pytest.fixture
async def gateway(make_settings: Callable[..., Settings]) -> AsyncIterator[tuple[BastionApp, httpx.AsyncClient]]:
    """The gateway on an empty log, its periodic signer stopped: checkpoints are signed when a test says so."""
    settings = make_settings(providers=[{"name": "l", "kind": "echo", "models": ["e"]}])
    async with in_process(settings) as (app, http):
        runtime = runtime_of(app)
        await runtime.checkpointer.stop()  # nothing to sign yet: the log is empty
        runtime.services.org.create_project("cli:test", ProjectConfig(name="p"))
        yield app, http


async def signed(http: httpx.AsyncClient, size: int | None = None) -> tuple[int, bytes]:
    vkey = Verifier.from_vkey((await http.get("/audit/v1/vkey")).text)
    response = await http.get("/audit/v1/checkpoint", params={} if size is None else {"size": size})
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    checkpoint = verify_note(response.text, [vkey], origin="bastion.local/default")
    return checkpoint.size, checkpoint.root


async def test_the_checkpoint_is_a_signed_note_that_the_served_vkey_verifies(
    gateway: tuple[BastionApp, httpx.AsyncClient],
) -> None:
    app, http = gateway
    none = await http.get("/audit/v1/checkpoint")
    assert (none.status_code, error_of(none)["code"]) == (404, "not_found")
    assert "No checkpoint has been signed yet" in error_of(none)["message"]
    await grow(app, 2)
    first = await signed(http)
    await grow(app, 3)
    assert (await signed(http))[0] == first[0] + 3
    assert await signed(http, first[0]) == first
    missing = await http.get("/audit/v1/checkpoint", params={"size": 999})
    assert missing.status_code == 404 and "No checkpoint of tree size 999 is stored" in error_of(missing)["message"]
    assert none.headers["x-bastion-request-id"].startswith("req_")


async def test_an_inclusion_proof_verifies_against_the_signed_root(
    gateway: tuple[BastionApp, httpx.AsyncClient],
) -> None:
    app, http = gateway
    await grow(app, 5)
    size, root = await signed(http)
    for index in range(size):
        body = (await http.get("/audit/v1/proof/inclusion", params={"index": index})).json()
        assert (body["index"], body["size"]) == (index, size)
        assert unb64(body["leaf_hash"]) == leaf_hash(body["entry"].encode())
        verify_inclusion(index, size, leaf_hash(body["entry"].encode()), [unb64(h) for h in body["proof"]], root)
        assert unb64(body["root"]) == root and body["checkpoint"] is not None


async def test_a_consistency_proof_links_two_signed_checkpoints(gateway: tuple[BastionApp, httpx.AsyncClient]) -> None:
    app, http = gateway
    await grow(app, 3)
    old_size, old_root = await signed(http)
    await grow(app, 4)
    new_size, new_root = await signed(http)
    body = (await http.get("/audit/v1/proof/consistency", params={"from": old_size, "to": new_size})).json()
    assert (body["from"], body["to"]) == (old_size, new_size)
    verify_consistency(old_size, new_size, old_root, new_root, [unb64(h) for h in body["proof"]])
    default = (await http.get("/audit/v1/proof/consistency", params={"from": old_size})).json()
    assert default == body


@pytest.mark.parametrize(
    ("path", "params", "status", "code", "param"),
    [
        ("/proof/inclusion", {"index": 50}, 400, "invalid_parameter", "index"),
        ("/proof/inclusion", {"index": 1, "size": 500}, 400, "invalid_parameter", "size"),
        ("/proof/inclusion", {}, 400, "missing_required_parameter", "index"),
        ("/proof/inclusion", {"index": -1}, 400, "invalid_parameter", "index"),
        ("/proof/consistency", {"from": 9, "to": 3}, 400, "invalid_parameter", "from"),
        ("/proof/consistency", {"from": 1, "to": 500}, 400, "invalid_parameter", "to"),
        ("/proof/consistency", {"from": "x"}, 400, "invalid_parameter", "from"),
        ("/nowhere", {}, 404, "not_found", None),
    ],
)
async def test_bad_proof_requests_are_refused_in_the_envelope(
    gateway: tuple[BastionApp, httpx.AsyncClient],
    path: str,
    params: dict[str, Any],
    status: int,
    code: str,
    param: str | None,
) -> None:
    app, http = gateway
    await grow(app, 3)
    response = await http.get("/audit/v1" + path, params=params)
    error = error_of(response)
    assert (response.status_code, error["code"], error["param"]) == (status, code, param)


async def test_a_proof_before_any_checkpoint_needs_a_size(gateway: tuple[BastionApp, httpx.AsyncClient]) -> None:
    _, http = gateway
    response = await http.get("/audit/v1/proof/inclusion", params={"index": 0})
    assert response.status_code == 404 and "sign one with 'bastion audit checkpoint'" in error_of(response)["message"]
    explicit = await http.get("/audit/v1/proof/inclusion", params={"index": 0, "size": 1})
    assert explicit.status_code == 200 and explicit.json()["checkpoint"] is None


async def test_the_routes_are_documented(gateway: tuple[BastionApp, httpx.AsyncClient]) -> None:
    _, http = gateway
    paths = (await http.get("/audit/v1/openapi.json")).json()["paths"]
    assert set(paths) == {
        f"/audit/v1/{p}" for p in ("checkpoint", "vkey", "proof/inclusion", "proof/consistency", "entries")
    }


async def entries_of(org: AdminOrg, role: str, **params: Any) -> httpx.Response:
    assert org.http is not None
    return await org.http.get("/audit/v1/entries", params=params, headers={"Authorization": f"Bearer {org.keys[role]}"})


@pytest.mark.parametrize("role", ["owner", "admin", "reader"])
async def test_organisation_readers_read_every_projects_entries(make_org: MakeOrg, role: str) -> None:
    async with make_org() as org:
        response = await entries_of(org, role, limit=1000)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list" and body["has_more"] is False and body["next_cursor"] is None
    assert [entry["seq"] for entry in body["data"]] == list(range(len(body["data"])))
    assert {"alpha", "beta", None} <= {entry["project"] for entry in body["data"]}


@pytest.mark.parametrize("role", ["lead", "member"])
async def test_other_members_read_their_own_projects_entries_only(make_org: MakeOrg, role: str) -> None:
    async with make_org() as org:
        own = await entries_of(org, role, limit=1000)
        other = await entries_of(org, role, project="beta")
        named = await entries_of(org, role, project="alpha", action="key.create")
    assert own.status_code == 200
    assert own.json()["data"] and {entry["project"] for entry in own.json()["data"]} == {"alpha"}
    assert not any(marker in own.text for marker in org.markers)
    assert (other.status_code, error_of(other)["code"]) == (404, "not_found")
    assert named.json()["data"] and {e["action"] for e in named.json()["data"]} == {"key.create"}


@pytest.mark.parametrize(
    ("role", "status", "code"), [("sa", 403, "permission_denied"), ("project", 403, "permission_denied")]
)
async def test_only_members_keys_read_entries(make_org: MakeOrg, role: str, status: int, code: str) -> None:
    async with make_org() as org:
        response = await entries_of(org, role)
        assert org.http is not None
        anonymous = await org.http.get("/audit/v1/entries")
    assert (response.status_code, error_of(response)["code"]) == (status, code)
    assert (anonymous.status_code, error_of(anonymous)["code"]) == (401, "invalid_api_key")


async def test_entries_page_with_the_cursor(make_org: MakeOrg) -> None:
    async with make_org() as org:
        everything = (await entries_of(org, "owner", limit=1000)).json()["data"]
        pages, cursor = [], None
        while True:
            body = (
                await entries_of(org, "owner", limit=7, **({"cursor": cursor} if cursor is not None else {}))
            ).json()
            pages += body["data"]
            cursor = body["next_cursor"]
            if not body["has_more"]:
                break
    assert pages == everything and len(everything) > 7


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 1001}, "limit"),
        ({"limit": 0}, "limit"),
        ({"from": "2026-01-01T00:00:00"}, "from"),
        ({"to": "soon"}, "to"),
    ],
)
async def test_bad_entry_filters_are_refused(make_org: MakeOrg, params: dict[str, Any], param: str) -> None:
    async with make_org() as org:
        response = await entries_of(org, "owner", **params)
    assert (response.status_code, error_of(response)["code"], error_of(response)["param"]) == (
        400,
        "invalid_parameter",
        param,
    )


async def test_entries_filter_by_time(make_org: MakeOrg) -> None:
    async with make_org() as org:
        everything = (await entries_of(org, "owner", limit=1000)).json()["data"]
        middle = everything[len(everything) // 2]["time"]
        later = (await entries_of(org, "owner", limit=1000, **{"from": middle})).json()["data"]
        earlier = (await entries_of(org, "owner", limit=1000, to=middle)).json()["data"]
    assert later and earlier and len(later) + len(earlier) == len(everything)
    assert all(entry["time"] >= middle for entry in later) and all(entry["time"] < middle for entry in earlier)
