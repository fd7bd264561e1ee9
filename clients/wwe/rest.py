"""The Workspace API v3 REST calls a WWE desktop makes, over aiohttp (DESIGN §2.3).

Lab auth (``POST /auth/v3/oauth/token``, password grant, RFC 6749 §4.3), then
``initialize-workspace`` with the bearer token (sets the ``WORKSPACE_SESSIONID`` cookie in the
shared cookie jar) and the session's requests. This is the one boundary where aiohttp, OSError
and timeouts become :mod:`clients.wwe.errors`: no Workspace answer at all (refused, reset, timed
out, or a proxy's own ``502``/``503`` page) is :class:`ServerUnreachable`; a Workspace error body
is :class:`RequestFailed` (:class:`SessionGone` for 401).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from clients.wwe.errors import LoginFailed, RequestFailed, ServerUnreachable, SessionGone

API = "/workspace/v3"
TOKEN_PATH = "/auth/v3/oauth/token"
# The lab's auth accepts any client in the Basic header; WWE names itself.
CLIENT_ID, CLIENT_SECRET = "drlab-wwe", "drlab-wwe-secret"


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii")


def _workspace_message(body: Any) -> str | None:
    """``status.message`` of a Workspace body, if the body is one."""
    if isinstance(body, Mapping):
        status = body.get("status")
        if isinstance(status, Mapping) and isinstance(status.get("message"), str):
            return str(status["message"])
    return None


class WorkspaceRest:
    def __init__(self, http: aiohttp.ClientSession, base_url: str, *, timeout: float) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    async def _exchange(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[int, Any, str, Mapping[str, str]]:
        """One request: (status, JSON body or None, text, headers); failures translated."""
        url = f"{self.base_url}{path}"
        try:
            async with (
                asyncio.timeout(self.timeout),
                self.http.request(method, url, **kwargs) as response,
            ):
                text = await response.text(errors="replace")
                status, headers = response.status, dict(response.headers)
        except TimeoutError:
            raise ServerUnreachable(
                f"{method} {path}: no answer within {self.timeout:.3g} s"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ServerUnreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        try:
            body = json.loads(text) if text.strip() else None
        except ValueError:
            body = None
        return status, body, text, headers

    async def token(self, username: str, password: str) -> str:
        status, body, text, _ = await self._exchange(
            "POST",
            TOKEN_PATH,
            data={"grant_type": "password", "username": username, "password": password},
            headers={"Authorization": _basic(CLIENT_ID, CLIENT_SECRET)},
        )
        if (
            status == 200
            and isinstance(body, Mapping)
            and isinstance(body.get("access_token"), str)
        ):
            return str(body["access_token"])
        if isinstance(body, Mapping) and "error" in body:
            description = body.get("error_description") or body["error"]
            raise LoginFailed(f"login refused for {username!r}: {description} ({body['error']})")
        if status >= 500:
            raise ServerUnreachable(f"POST {TOKEN_PATH}: HTTP {status}: {text.strip()[:120]}")
        raise LoginFailed(f"login refused for {username!r}: HTTP {status}: {text.strip()[:120]}")

    async def initialize(self, token: str) -> None:
        status, body, text, _ = await self._exchange(
            "POST", f"{API}/initialize-workspace", headers={"Authorization": f"Bearer {token}"}
        )
        if 200 <= status < 300:
            return
        message = _workspace_message(body)
        if message is None and status >= 500:
            raise ServerUnreachable(f"initialize-workspace: HTTP {status}: {text.strip()[:120]}")
        raise LoginFailed(f"workspace initialization refused: {message or text.strip()[:120]}")

    async def request(
        self, method: str, path: str, data: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """A Workspace request under ``/workspace/v3``; returns the answer body."""
        kwargs: dict[str, Any] = {}
        if data is not None:
            kwargs["json"] = {"data": dict(data)}
        elif method == "POST":
            kwargs["json"] = {}
        status, body, text, _ = await self._exchange(method, f"{API}{path}", **kwargs)
        message = _workspace_message(body)
        if 200 <= status < 300 and isinstance(body, dict):
            return body
        where = f"{method} {API}{path}"
        if message is None:
            # Not a Workspace answer: a proxy's own error page, or something else entirely.
            detail = f"{where}: HTTP {status}: {text.strip()[:120] or 'no body'}"
            if status >= 500 or 200 <= status < 300:
                raise ServerUnreachable(detail)
            raise RequestFailed(status, detail)
        if status == 401:
            raise SessionGone(status, message)
        raise RequestFailed(status, message)
