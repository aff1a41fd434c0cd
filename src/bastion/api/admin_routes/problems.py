"""Every admin API error as OpenAI's envelope: Bastion's own, FastAPI's validation errors, routing's 404/405.

Validation errors become 400s that name the field by its path (``limits.rpm``, ``ip_allowlist[0]``)
in ``param`` and say what is wrong with it in ``message``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from bastion.api.errors import render
from bastion.errors import (
    BastionError,
    InvalidJSON,
    InvalidParameter,
    InvalidRequest,
    MethodNotAllowed,
    MissingParameter,
    NotFound,
    RequestTooLarge,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Sequence

    from starlette.requests import Request

SOURCES = ("body", "query", "path", "header")
SHOWN = 5  # errors spelled out in one message


def field_path(loc: Sequence[Any]) -> str:
    """``("body", "limits", "rpm")`` -> ``limits.rpm``; list positions as ``[0]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _sentence(error: Any, path: str) -> str:
    kind = error.get("type")
    if kind == "extra_forbidden":
        return f"'{path}' is not a field this route accepts; remove it (see /admin/v1/docs)"
    if not path and kind == "value_error":  # a rule across fields, e.g. "a provider of kind 'azure' needs api_version"
        return str(error.get("msg", "")).removeprefix("Value error, ")
    if not path:
        return "the body must be a JSON object sent with 'Content-Type: application/json'"
    if kind == "missing":
        return f"'{path}' is required"
    detail = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    return f"'{path}' is not valid: {detail[0].lower()}{detail[1:]}" if detail else f"'{path}' is not valid"


def invalid(errors: Sequence[Any], strip: tuple[str, ...] = SOURCES) -> InvalidRequest:
    """One 400 for a list of pydantic errors: every field named in the message, the first in ``param``."""
    paths = [field_path(e["loc"][1:] if e["loc"] and e["loc"][0] in strip else e["loc"]) for e in errors]
    if errors and errors[0].get("type") == "json_invalid":
        reason = errors[0].get("ctx", {}).get("error", "malformed")
        return InvalidJSON(f"The request body is not valid JSON ({reason}); send a JSON object.")
    sentences = [_sentence(error, path) for error, path in zip(errors, paths, strict=True)][:SHOWN]
    more = f" (and {len(errors) - SHOWN} more)" if len(errors) > SHOWN else ""
    message = "; ".join(sentences) + more + "."
    message = message[0].upper() + message[1:]
    error_class = MissingParameter if errors and errors[0].get("type") == "missing" else InvalidParameter
    return error_class(message, param=paths[0] if paths and paths[0] else None)


def respond(exc: BastionError) -> Response:
    status, body, content_type = render(exc)
    response = Response(body, status_code=status, media_type=content_type)
    response.raw_headers.extend(exc.headers)
    return response


async def on_bastion_error(_request: Request, exc: BastionError) -> Response:
    return respond(exc)


async def on_validation_error(_request: Request, exc: RequestValidationError) -> Response:
    return respond(invalid(exc.errors()))


async def on_http_error(request: Request, exc: HTTPException) -> Response:
    """Routing's own refusals (no such route, wrong method) in the envelope, with ``Allow`` kept."""
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (exc.headers or {}).items()]
    if exc.status_code == 404:
        error: BastionError = NotFound(
            f"The admin API has no route {request.method} {request.url.path}; /admin/v1/docs lists the routes."
        )
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        error = MethodNotAllowed(f"{request.url.path} does not accept {request.method}; it accepts {allowed}.")
    elif exc.status_code == 413:
        error = RequestTooLarge("The request body is too large for the admin API (1 MiB at most); send a smaller body.")
    else:
        error = InvalidRequest(str(exc.detail))
        error.status = exc.status_code
    error.headers = headers
    return respond(error)


def handlers() -> dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]]:
    """The admin app's exception handlers: every error it can raise, rendered in the envelope."""
    return {BastionError: on_bastion_error, RequestValidationError: on_validation_error, HTTPException: on_http_error}
