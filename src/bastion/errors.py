"""Bastion's one exception tree; every refusal a client can see is one of these.

    BastionError                      500 internal_error
    ├── ConfigError                   (start-up only: names file, line and key)
    ├── InvalidRequest                400 invalid_request_error
    │   ├── SensitiveDataBlocked      400 sensitive_data_blocked
    │   ├── InvalidJSON               400 invalid_json
    │   ├── MissingParameter          400 missing_required_parameter
    │   ├── InvalidParameter          400 invalid_parameter
    │   ├── RequestTooLarge           413 request_too_large
    │   ├── UnsupportedMediaType      415 unsupported_media_type
    │   └── MethodNotAllowed          405 method_not_allowed
    ├── NotFound                      404 not_found
    │   └── ModelNotFound             404 model_not_found
    ├── AuthenticationError           401 invalid_api_key
    │   ├── KeyExpired                401 key_expired
    │   └── KeyRevoked                401 key_revoked
    ├── PermissionDenied              403 permission_denied
    │   ├── ModelNotAllowed           403 model_not_allowed
    │   └── IPNotAllowed              403 ip_not_allowed
    ├── Conflict                      409 conflict
    ├── ClientDisconnected            499 (logged only: nobody is left to answer)
    ├── RateLimited                   429 rate_limit_exceeded (with Retry-After)
    ├── Unavailable                   503 unavailable (starting or stopping)
    ├── NoEligibleUpstream            503 no_eligible_upstream (no provider may take this data, or none is healthy)
    ├── RateLimiterUnavailable        503 rate_limiter_unavailable (Redis unreachable: fail closed)
    ├── AuditUnavailable              503 audit_unavailable (the log cannot be written: fail closed)
    ├── AuditCorrupt                  500 audit_corrupt (the stored tree head does not match the log)
    └── UpstreamError                 502 upstream_unavailable
        ├── UpstreamTimeout           504 upstream_unavailable
        └── UpstreamRejected          the upstream's own 4xx, passed through as it came

Each class carries its HTTP status, OpenAI error ``type`` and stable ``code``; ``api/errors.py``
renders any of them as OpenAI's ``{"error": {...}}`` envelope.
"""

from __future__ import annotations


class BastionError(Exception):
    """Base of every error Bastion raises on purpose."""

    status = 500
    type = "server_error"
    code = "internal_error"

    def __init__(
        self, message: str, *, param: str | None = None, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or []


class ConfigError(BastionError):
    """The configuration cannot be used; raised at start, never while serving."""

    code = "invalid_config"


class InvalidRequest(BastionError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class SensitiveDataBlocked(InvalidRequest):
    code = "sensitive_data_blocked"


class InvalidJSON(InvalidRequest):
    code = "invalid_json"


class MissingParameter(InvalidRequest):
    code = "missing_required_parameter"


class InvalidParameter(InvalidRequest):
    code = "invalid_parameter"


class RequestTooLarge(InvalidRequest):
    status = 413
    code = "request_too_large"


class UnsupportedMediaType(InvalidRequest):
    status = 415
    code = "unsupported_media_type"


class MethodNotAllowed(InvalidRequest):
    status = 405
    code = "method_not_allowed"


class NotFound(BastionError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class AuthenticationError(BastionError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class KeyExpired(AuthenticationError):
    code = "key_expired"


class KeyRevoked(AuthenticationError):
    code = "key_revoked"


class PermissionDenied(BastionError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class ModelNotAllowed(PermissionDenied):
    code = "model_not_allowed"


class IPNotAllowed(PermissionDenied):
    code = "ip_not_allowed"


class Conflict(BastionError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


class ClientDisconnected(BastionError):
    status = 499
    type = "invalid_request_error"
    code = "client_disconnected"


class RateLimited(BastionError):
    status = 429
    type = "requests"
    code = "rate_limit_exceeded"


class Unavailable(BastionError):
    status = 503
    type = "server_error"
    code = "unavailable"


class NoEligibleUpstream(BastionError):
    """No provider both may receive this request (residency, attestations) and is healthy; never routed around."""

    status = 503
    type = "server_error"
    code = "no_eligible_upstream"


class UpstreamError(BastionError):
    status = 502
    type = "server_error"
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504


class UpstreamRejected(UpstreamError):
    """The upstream refused the request (4xx); its status and body reach the client unchanged."""

    def __init__(self, status: int, body: bytes, content_type: str, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(f"The upstream refused the request with HTTP {status}.", headers=headers)
        self.status = status
        self.body = body
        self.content_type = content_type


class RateLimiterUnavailable(BastionError):
    """The shared limiter's store cannot be reached; the gateway refuses rather than admit unchecked."""

    status = 503
    type = "server_error"
    code = "rate_limiter_unavailable"


class AuditUnavailable(BastionError):
    """The audit log cannot be written: Bastion refuses the request rather than act unrecorded."""

    status = 503
    type = "server_error"
    code = "audit_unavailable"


class AuditCorrupt(BastionError):
    code = "audit_corrupt"
