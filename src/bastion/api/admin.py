"""The admin REST API under ``/admin/v1``: a FastAPI app over the same services the CLI uses.

Routes come from tables in ``admin_routes/`` (organisation, projects, keys); every error is OpenAI's
envelope; OpenAPI is at ``/admin/v1/openapi.json`` and interactive docs at ``/admin/v1/docs``.
The permission matrix is ``identity/rbac.py``; docs/admin-api.md shows it and every route.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from pydantic import TypeAdapter

from bastion import __version__
from bastion.api.admin_routes import keys, org, projects, reports, routing
from bastion.api.admin_routes.caller import Control
from bastion.api.admin_routes.problems import handlers
from bastion.api.http import headers_of, send_error
from bastion.durations import format_duration
from bastion.errors import RequestTooLarge

if TYPE_CHECKING:
    from bastion.api.admin_routes.route import Route

PREFIX = "/admin/v1"
DURATION_PATTERN = r"^\s*\d+\s*[smhdw]\s*$"
MAX_BODY = 1024 * 1024  # admin bodies are small; anything larger is refused with 413
ROUTES: tuple[Route, ...] = (*org.ROUTES, *projects.ROUTES, *keys.ROUTES, *reports.ROUTES, *routing.ROUTES)
DESCRIPTION = (
    "Manage Bastion's organisation: members, invites, projects, service accounts and keys. "
    "Authenticate with a member's key (`Authorization: Bearer <key>`); a key sees only its own project."
)

__all__ = ["PREFIX", "ROUTES", "AdminApp", "Control", "create_admin_app"]


class AdminApp:
    """The FastAPI app behind a check of the declared body size (Starlette would answer that in plain text)."""

    def __init__(self, app: FastAPI) -> None:
        self.fastapi = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        declared = headers_of(scope).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > MAX_BODY:
            await send_error(send, RequestTooLarge(f"The request body exceeds {MAX_BODY} bytes; send a smaller body."))
            return
        await self.fastapi(scope, receive, send)


def create_admin_app(control: Control) -> AdminApp:
    """The admin app for ``control``; mount it so that it sees paths starting with ``/admin/v1``."""
    app = FastAPI(
        title="Bastion admin API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        exception_handlers=handlers(),
        max_body_size=MAX_BODY,
        # No OpenTelemetry capture: admin bodies carry invite tokens and new keys.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.control = control
    for route in ROUTES:
        app.add_api_route(
            PREFIX + route.path,
            route.endpoint,
            methods=[route.method],
            status_code=route.status,
            response_model=None,
            tags=[route.tag],
        )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return AdminApp(app)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, built once, with durations documented the way Bastion writes them."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        _human_durations(schema)
    return app.openapi_schema or {}


def _human_durations(node: Any) -> None:
    """pydantic documents a timedelta as ISO 8601 (``P1D``); Bastion reads ``30d``, ``24h``, ``90m``, ``45s``."""
    if isinstance(node, list):
        for item in node:
            _human_durations(item)
    if not isinstance(node, dict):
        return
    parts = [node, *node.get("anyOf", ())]
    if any(part.get("format") == "duration" for part in parts):
        for part in parts:
            if part.pop("format", None) == "duration":
                part["pattern"] = DURATION_PATTERN
        if isinstance(node.get("default"), str):
            node["default"] = format_duration(TypeAdapter(timedelta).validate_python(node["default"]))
        node.setdefault("examples", ["30d"])
    for value in node.values():
        _human_durations(value)
