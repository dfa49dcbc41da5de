"""The one error tree. Domain code raises these; the edges (HTTP, CLI) translate them."""

from __future__ import annotations

from typing import Any


class ShipwayError(Exception):
    """Raised when shipway cannot do what was asked; the base of every domain error."""

    code = "error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(ShipwayError):
    """Raised when a setting is missing or has a bad value; the message names the key."""

    code = "bad_config"


class ValidationError(ShipwayError):
    """Raised when input breaks a rule; the message states the rule."""

    code = "invalid"


class BadRequest(ValidationError):
    """Raised when a request cannot be read at all (a body that is not JSON, say)."""

    code = "bad_request"


class NotFound(ShipwayError):
    """Raised when the thing asked for does not exist for this tenant."""

    code = "not_found"


class Conflict(ShipwayError):
    """Raised when the change clashes with what is stored (a duplicate name, say)."""

    code = "conflict"


class Unauthorized(ShipwayError):
    """Raised when a request carries no valid credentials."""

    code = "unauthorized"


class Forbidden(ShipwayError):
    """Raised when the credentials are valid but their role does not allow the action."""

    code = "forbidden"


class IllegalTransition(ShipwayError):
    """Raised when a lifecycle is asked to move to a state it cannot reach from its current one."""

    code = "illegal_transition"


class TooLarge(ShipwayError):
    """Raised when an upload or push passes its size limit."""

    code = "payload_too_large"


class UnsupportedMedia(ShipwayError):
    """Raised when a body is not of a type the endpoint takes."""

    code = "unsupported_media_type"


class ServiceError(ShipwayError):
    """Raised when an embedded or remote service (Temporal, NATS) cannot be started or reached."""

    code = "service_unavailable"


class PortInUse(ServiceError):
    """Raised when a port shipway must listen on is already taken."""

    code = "port_in_use"


class ClientError(ShipwayError):
    """Raised when a shipway client (a CLI command, the git hook) cannot do what its user asked:
    bad input, no server to reach, or the server's refusal; the message is the one line shown."""

    code = "client_error"


class SecretKeyError(ShipwayError):
    """Raised when DATA/secret.key is unsafe or unusable, or a secret does not decrypt with it."""

    code = "secret_key"
