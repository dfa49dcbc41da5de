"""The one place where errors become HTTP responses of the form {"error": {...}}."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipway import errors

log = logging.getLogger(__name__)

STATUS: dict[type[errors.ShipwayError], int] = {
    errors.BadRequest: 400,
    errors.ValidationError: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.IllegalTransition: 409,
    errors.ServiceError: 503,
    errors.TooLarge: 413,
    errors.UnsupportedMedia: 415,
    errors.SecretKeyError: 500,
}

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


class ErrorResponse(JSONResponse):
    """An error in ASCII JSON: input echoed in it (a lone surrogate, say) can always be sent."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":"), default=str).encode("ascii")


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """HEADERS: those the answer needs, such as the Allow of a 405."""
    headers = {**(headers or {}), **({"WWW-Authenticate": "Bearer"} if status == 401 else {})}
    return ErrorResponse(error_body(code, message, details), status_code=status, headers=headers)


class Refused(StarletteHTTPException):
    """Raised to carry a domain error out of FastAPI's reading of a body, which lets only
    HTTP errors through."""

    def __init__(self, error: errors.ShipwayError) -> None:
        super().__init__(status_for(error), error.message)
        self.error = error


def status_for(exc: errors.ShipwayError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def _describe(error: dict[str, Any]) -> str:
    loc = list(error.get("loc", ()))
    if loc and loc[0] in ("body", "path", "query", "header", "cookie"):
        loc = loc[1:]  # the parameter's name says enough
    where = ".".join(str(p) for p in loc)
    if error.get("type") == "json_invalid":
        ctx = error.get("ctx") or {}
        return f"malformed JSON: {ctx.get('error', 'cannot be parsed')}"
    return f"{where}: {error.get('msg')}" if where else str(error.get("msg"))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _allowed(request: Request) -> str:
    """Every method the request's path takes, as the schema lists them: routing names only
    those of the first route that matches the path."""
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {method.upper() for method in operations}
    return ", ".join(sorted(methods))


def _domain(exc: errors.ShipwayError) -> JSONResponse:
    return error_response(status_for(exc), exc.code, exc.message, _jsonable(exc.details))


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the documented error shape."""

    @app.exception_handler(errors.ShipwayError)
    async def domain_error(_: Request, exc: errors.ShipwayError) -> JSONResponse:
        return _domain(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [_describe(e) for e in exc.errors()]
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return error_response(422, "invalid", "; ".join(problems), details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, Refused):
            return _domain(exc.error)
        code = HTTP_CODES.get(exc.status_code, "error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed(request) or headers.get("Allow", "")
        return error_response(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error; see the server log")
