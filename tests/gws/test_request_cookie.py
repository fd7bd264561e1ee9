"""The session cookie is read from the Cookie header exactly as aiohttp's full parser reads it."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from emulator.gws.http_api import request_cookie
from emulator.gws.sessions import SESSION_COOKIE


@pytest.mark.parametrize(
    "header",
    [
        f"{SESSION_COOKIE}=abc; DRLAB_UPSTREAM=gws1",
        f"DRLAB_UPSTREAM=gws1;{SESSION_COOKIE}=abc",
        f"{SESSION_COOKIE}=a; {SESSION_COOKIE}=b",
        f'{SESSION_COOKIE}="quoted"',
        f'{SESSION_COOKIE}="esc\\"aped"',
        f"{SESSION_COOKIE}=",
        f" {SESSION_COOKIE} = spaced ",
        f"a=b=c; {SESSION_COOKIE}=x=y",
        f"{SESSION_COOKIE}=abc;;; junk; =z",
        "junk",
        "",
    ],
)
def test_session_cookie_lookup_agrees_with_aiohttp(header: str) -> None:
    request = make_mocked_request("POST", "/workspace/v3/voice/ready", headers={"Cookie": header})
    assert request_cookie(request, SESSION_COOKIE) == request.cookies.get(SESSION_COOKIE)
