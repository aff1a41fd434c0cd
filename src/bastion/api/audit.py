"""The audit API under ``/audit/v1``: signed checkpoints, the verifier key and proofs for anyone (they reveal
only hashes), and the entries themselves for members whose role lets them read the log.

Organisation owners, admins and readers read every entry; any other member reads the entries of their key's
project only. Errors are OpenAI's envelope; OpenAPI is at ``/audit/v1/openapi.json``.
FastAPI reads these handlers' signatures at runtime, so this module does not postpone annotations.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import Engine
from starlette.exceptions import HTTPException
from starlette.responses import Response

from bastion import __version__
from bastion.api.admin_routes import scope
from bastion.api.admin_routes.caller import Admin, AdminDep, Control, limit_anonymous
from bastion.api.admin_routes.problems import handlers, on_http_error, respond
from bastion.api.admin_routes.route import listing
from bastion.audit.checkpoints import Checkpoints
from bastion.audit.export import EntryFilter, find_entries
from bastion.errors import InvalidParameter, NotFound, PermissionDenied

PREFIX = "/audit/v1"
ORG_WIDE = frozenset({"owner", "admin", "reader"})
NOTE_TYPE = "text/plain; charset=utf-8"
DESCRIPTION = (
    "Bastion's tamper-evident audit log: signed checkpoints (C2SP tlog-checkpoint), the key that verifies them, "
    "RFC 9162 inclusion and consistency proofs, and the entries (a member's key with a role that may read them)."
)


@dataclass(frozen=True)
class AuditControl:
    """What the audit API works with; the runtime builds it once."""

    checkpoints: Checkpoints
    engine: Engine


def audit_of(request: Request) -> AuditControl:
    audit: AuditControl = request.app.state.audit
    return audit


AuditDep = Annotated[AuditControl, Depends(audit_of)]
Anonymous = Annotated[None, Depends(limit_anonymous)]  # no key needed; limited per source address
Size = Annotated[int | None, Query(ge=0, description="A tree size; default: the newest checkpoint's.")]


def _size(audit: AuditControl, size: int | None, param: str) -> int:
    """``size`` if the log has that many entries; by default the size of the newest checkpoint."""
    if size is None:
        latest = audit.checkpoints.latest()
        if latest is None:
            raise NotFound("No checkpoint has been signed yet; sign one with 'bastion audit checkpoint'.")
        return latest.size
    held, _ = audit.checkpoints.prover.head()
    if size > held:
        raise InvalidParameter(f"'{param}' is {size}, but the log holds only {held} entries.", param=param)
    return size


def checkpoint(audit: AuditDep, _limit: Anonymous, size: Size = None) -> PlainTextResponse:
    """The newest signed checkpoint as a C2SP signed note, or the stored one of tree size ``size``."""
    found = audit.checkpoints.latest() if size is None else audit.checkpoints.at(size)
    if found is None and size is None:
        raise NotFound(
            "No checkpoint has been signed yet; sign one with 'bastion audit checkpoint' (the gateway signs one "
            "every audit.checkpoint_interval while the log grows)."
        )
    if found is None:
        raise NotFound(f"No checkpoint of tree size {size} is stored; GET /audit/v1/checkpoint gives the newest.")
    return PlainTextResponse(found.note, media_type=NOTE_TYPE)


def vkey(audit: AuditDep, _limit: Anonymous) -> PlainTextResponse:
    """The verifier key of the checkpoints' signatures (``<name>+<key id>+<key>``), for ``bastion audit verify``."""
    return PlainTextResponse(audit.checkpoints.signer.verifier.vkey + "\n", media_type=NOTE_TYPE)


def inclusion(
    audit: AuditDep, _limit: Anonymous, index: Annotated[int, Query(ge=0)], size: Size = None
) -> dict[str, Any]:
    """The proof that entry ``index`` is in the tree of ``size`` entries, with the entry's canonical text."""
    size = _size(audit, size, "size")
    if index >= size:
        held = f"entries 0..{size - 1}" if size else "no entries"
        raise InvalidParameter(f"'index' is {index}, but the tree of size {size} holds {held}.", param="index")
    proof = audit.checkpoints.prover.inclusion(index, size)
    stored = audit.checkpoints.at(size)
    return proof.to_json(stored.note if stored else None)


def consistency(
    audit: AuditDep,
    _limit: Anonymous,
    old: Annotated[int, Query(alias="from", ge=0)],
    new: Annotated[int | None, Query(alias="to", ge=0, description="Default: the newest checkpoint's size.")] = None,
) -> dict[str, Any]:
    """The proof that the tree of ``from`` entries is a prefix of the tree of ``to`` entries."""
    new = _size(audit, new, "to")
    if old > new:
        raise InvalidParameter(
            f"'from' is {old}, larger than 'to' ({new}); an older tree is the smaller.", param="from"
        )
    return audit.checkpoints.prover.consistency(old, new).to_json()


def readable_project(admin: Admin, asked: str | None) -> str | None:
    """The project filter this key may use: anything for organisation-wide readers, else its own project only."""
    principal = admin.principal
    if principal.project_role is None:
        raise PermissionDenied(
            f"Member '{principal.name}' no longer holds a role in project '{admin.project}', so this key cannot "
            "read the audit log; ask an owner or admin to add you to the project."
        )
    if principal.org_role in ORG_WIDE:
        return asked
    if asked is not None:
        scope.project(admin, asked)
    return admin.project


def _moment(value: datetime | None, param: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidParameter(f"'{param}' needs a time zone (RFC 3339), e.g. 2026-01-31T00:00:00Z.", param=param)
    return value


def entries(
    admin: AdminDep,
    audit: AuditDep,
    since: Annotated[datetime | None, Query(alias="from", description="RFC 3339; entries at or after.")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="RFC 3339; entries before.")] = None,
    actor: str | None = None,
    project: str | None = None,
    action: str | None = None,
    status: int | None = None,
    request_id: str | None = None,
    cursor: Annotated[int | None, Query(ge=0, description="The next_cursor of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Entries matching every filter given, oldest first; follow ``next_cursor`` for the next page."""
    wanted = EntryFilter(
        since=_moment(since, "from"),
        until=_moment(until, "to"),
        actor=actor,
        project=readable_project(admin, project),
        action=action,
        status=status,
        request_id=request_id,
        after=cursor,
        limit=limit,
    )
    found, more = find_entries(audit.engine, wanted)
    next_cursor = found[-1].seq if more and found else None
    return listing([entry.json() for entry in found], has_more=more, next_cursor=next_cursor)


ROUTES = (
    ("/checkpoint", checkpoint, PlainTextResponse),
    ("/vkey", vkey, PlainTextResponse),
    ("/proof/inclusion", inclusion, JSONResponse),
    ("/proof/consistency", consistency, JSONResponse),
    ("/entries", entries, JSONResponse),
)


async def on_audit_http_error(request: Request, exc: HTTPException) -> Response:
    """Routing's refusals in the envelope, pointing at this API's own docs."""
    if exc.status_code == 404:
        return respond(NotFound(f"The audit API has no route {request.url.path}; /audit/v1/docs lists the routes."))
    return await on_http_error(request, exc)


def create_audit_app(control: Control, audit: AuditControl) -> FastAPI:
    """The audit app; mount it so that it sees paths starting with ``/audit/v1``."""
    app = FastAPI(
        title="Bastion audit API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        exception_handlers={**handlers(), HTTPException: on_audit_http_error},
        max_body_size=0,  # every route is a GET
        # No OpenTelemetry capture: entry filters may name people.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.control = control
    app.state.audit = audit
    for path, endpoint, response_class in ROUTES:
        app.add_api_route(
            PREFIX + path, endpoint, methods=["GET"], response_model=None, response_class=response_class, tags=["audit"]
        )
    return app
