"""What every Workspace API route shares: the answer shapes, the error middleware (the one
boundary where aiohttp exceptions become ``GwsError`` answers), body and cookie reading.

Answers are ``{"status": {"code": 0|1, "message"}}`` (0 done, 1 accepted: the outcome comes over
CometD); errors are ``{"status": {"code": <HTTP status>, "message": <why>}}`` with a fitting HTTP
status, never an HTML page.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from emulator.common.jsonlog import JsonLog
from emulator.gws.errors import BadRequest, GwsError, PayloadTooLarge
from emulator.gws.sessions import Session

API = "/workspace/v3"
LOG_KEY = web.AppKey("gws_log", JsonLog)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The live session a request names (its cookie), or ``Unauthorized``.
SessionOf = Callable[[web.Request], Session]


def status_body(code: int, message: str, **extra: Any) -> dict[str, Any]:
    return {"status": {"code": code, "message": message}, **extra}


def error_response(status: int, message: str) -> web.Response:
    return web.json_response(status_body(status, message), status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure as a JSON error body; nothing a peer sends raises through."""
    try:
        return await handler(request)
    except GwsError as exc:
        return error_response(exc.http_status, exc.message)
    except web.HTTPRequestEntityTooLarge as exc:
        return error_response(413, f"request body too large ({exc.text})")
    except web.HTTPNotFound:
        return error_response(404, f"no such resource: {request.method} {request.path}")
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        return error_response(
            405, f"{request.method} is not allowed on {request.path} (allowed: {allowed})"
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.text or exc.reason)
    except ConnectionResetError as exc:
        # The client went away mid-answer (a cut link, a closed page): nobody to answer, and
        # not a bug of this node (aiohttp's ClientConnectionResetError is one of these).
        log = request.app.get(LOG_KEY)
        if log is not None:
            log.event("http.client_gone", method=request.method, path=request.path, error=str(exc))
        raise
    except Exception as exc:  # a bug must still be answered, logged, and leave the node up
        log = request.app.get(LOG_KEY)
        if log is not None:
            log.error(
                "http.internal_error", method=request.method, path=request.path, error=repr(exc)
            )
        return error_response(500, f"internal error handling {request.method} {request.path}")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The JSON object in the body; an empty body is ``{}`` (the JS client sends none)."""
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"request body larger than {request.client_max_size} bytes") from None
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except UnicodeDecodeError:
        raise BadRequest("request body is not UTF-8") from None
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"request body must be a JSON object, got {type(value).__name__}")
    return value


def request_cookie(request: web.Request, name: str) -> str | None:
    """One cookie of the request, as ``request.cookies`` has it, without building them all
    (aiohttp's full parse is most of the cost of finding the session of a request)."""
    header = request.headers.get("Cookie", "")
    if '"' in header or "\\" in header:
        return request.cookies.get(name)  # quoted values: aiohttp's parser unquotes them
    value = None
    for pair in header.split(";"):
        key, sep, item = pair.partition("=")
        if sep and key.strip() == name:
            value = item.strip()  # the last one wins, as in request.cookies
    return value


def data_object(body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data", {})
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadRequest("field 'data' must be an object")
    return data


def optional_text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"field 'data.{name}' must be a non-empty string")
    return value.strip()
