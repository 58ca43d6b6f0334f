"""What stands between a client and the runs: the token, the body limit, errors as named JSON.

A client never sees a traceback or a path of this machine: errors it caused get a code and a
sentence that names the field and the fix; errors of the server get an id to find in its log.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.errors import ConfigError
from .api import Problem

log = logging.getLogger("agentflow.server")

OPEN_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/health"})


class ApiError(Exception):
    """A request the server refuses: the HTTP status, a code, a message with the fix, the field."""

    def __init__(self, status: int, error: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.problem = status, Problem(error=error, message=message, field=field)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_token(token: str | None, authorization: str | None) -> None:
    """Refuse a request whose `Authorization: Bearer ...` is not the token (compared in constant time)."""
    if token is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(401, "unauthorized", "this server needs a token. Fix: send the header "
                                            "`Authorization: Bearer <token>` with the token it was started with "
                                            "(--token or $AGENTFLOW_TOKEN)")


class BodyLimit:
    """Refuse request bodies over `limit` bytes, whether or not they say their length."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.limit:
            await _problem(413, "body_too_large", self._message())(scope, receive, send)
            return
        taken = 0

        async def limited() -> Message:
            nonlocal taken
            message = await receive()
            taken += len(message.get("body", b""))
            if taken > self.limit:
                raise HTTPException(413, self._message())
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"the request body is over {self.limit} bytes. Fix: send less (or start the server with a larger " \
               "--max-body)"


def _problem(status: int, error: str, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse(Problem(error=error, message=message, field=field).model_dump(), status_code=status)


def install(app: FastAPI) -> None:
    """Every error the app can meet, as a `Problem`."""

    @app.exception_handler(ApiError)
    async def refused(request: Request, e: ApiError) -> JSONResponse:  # pyright: ignore[reportUnusedFunction]
        return JSONResponse(e.problem.model_dump(), status_code=e.status,
                            headers={"WWW-Authenticate": "Bearer"} if e.status == 401 else None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:  # pyright: ignore[reportUnusedFunction]
        return _problem(422, *describe(e.errors(), request.app.state.target_names))

    @app.exception_handler(HTTPException)
    async def http(request: Request, e: HTTPException) -> JSONResponse:  # pyright: ignore[reportUnusedFunction]
        codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        message = e.detail if e.status_code != 404 else f"there is no endpoint {request.url.path}. Fix: see /docs"
        return _problem(e.status_code, codes.get(e.status_code, "http_error"), str(message))

    @app.exception_handler(ConfigError)
    async def config(request: Request, e: ConfigError) -> JSONResponse:  # pyright: ignore[reportUnusedFunction]
        return _problem(422, "invalid_request", redact(str(e)))

    @app.exception_handler(Exception)
    async def crashed(request: Request, e: Exception) -> JSONResponse:  # pyright: ignore[reportUnusedFunction]
        ref = uuid.uuid4().hex[:12]
        log.error("request %s %s failed (error id %s)", request.method, request.url.path, ref, exc_info=e)
        return _problem(500, "internal", f"the server failed on this request (error id {ref}; the server's log "
                                         "has the details)")


def describe(errors: Any, targets: list[str]) -> tuple[str, str, str | None]:
    """pydantic's first complaint about a request as (code, message with the fix, field)."""
    first: dict[str, Any] = next(iter(errors), {})
    kind, msg = first.get("type", ""), first.get("msg", "invalid request")
    loc = [str(x) for x in first.get("loc", ())]
    if loc and loc[0] in ("body", "query", "path", "header"):
        loc = loc[1:]
    if len(loc) > 1 and loc[0] in targets:  # the run body union's branch: the target's name
        loc = loc[1:]
    field = ".".join(loc) or None
    if kind == "json_invalid":
        return "invalid_json", f"the body is not valid JSON ({first.get('ctx', {}).get('error', msg)}). Fix: send " \
                               "a JSON object with Content-Type: application/json", None
    if kind in ("union_tag_invalid", "union_tag_not_found") or (field == "target" and kind == "literal_error"):
        given = first.get("ctx", {}).get("tag") or first.get("input")
        what = f"there is no target {given!r}" if kind != "union_tag_not_found" else "the body names no target"
        return "unknown_target", f"{what}. Fix: use one of {', '.join(targets)} (GET /targets)", "target"
    if kind == "missing":
        return "invalid_request", f"{field} is missing. Fix: add it (the schemas are in GET /targets and /docs)", field
    if kind == "extra_forbidden":
        return "invalid_request", f"{field} is not a field here. Fix: remove it (see /docs)", field
    return "invalid_request", f"{field or 'the body'}: {msg}. Fix: send a value that fits the schema (GET /targets, " \
                              "/docs)", field


_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)
_PATH = re.compile(r"(?<![\w.])(/[\w.@+-]+){2,}")  # two parts or more: not an endpoint like /docs


def redact(text: str) -> str:
    """`text` without the values of secret-looking environment variables, and with paths outside
    the working directory cut to their last part."""
    for name, value in os.environ.items():
        if len(value) >= 8 and _SECRET_NAME.search(name) and value in text:
            text = text.replace(value, "[redacted]")
    here = str(Path.cwd())

    def cut(m: re.Match[str]) -> str:
        path = m.group(0)
        if path == here or path.startswith(here + "/"):
            return os.path.relpath(path, here)
        return f".../{path.rsplit('/', 1)[-1]}"

    return _PATH.sub(cut, text)
