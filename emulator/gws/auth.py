"""Lab authentication: the OAuth 2.0 password grant of ``POST /auth/v3/oauth/token`` and bearer
token checks (RFC 6749 §4.3 and §6, RFC 6750).

Tokens are signed, not stored: ``<payload>.<HMAC-SHA256>`` over the lab-wide secret, so a token
issued by gws1 is accepted by gws2 (a desktop that fails over keeps its token, as with the real
Genesys Authentication service shared by every GWS node). Token expiry is wall-clock time because
tokens travel between processes; it is not a protocol timer of the DR rules and is not scaled.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator.gws.config import User, UserDirectory
from emulator.gws.errors import AuthError, Unauthorized

TOKEN_PREFIX = "drlab"


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class TokenClaims:
    username: str
    kind: str
    expires_at: float


class TokenAuthority:
    def __init__(self, users: UserDirectory, secret: str, ttl: float) -> None:
        self._users = users
        self._key = secret.encode()
        self._ttl = ttl

    def _sign(self, payload: str) -> str:
        return _b64encode(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def _issue(self, username: str, kind: str, now: float, ttl: float) -> str:
        claims = {"sub": username, "typ": kind, "exp": now + ttl, "jti": secrets.token_hex(8)}
        payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
        return f"{TOKEN_PREFIX}.{payload}.{self._sign(payload)}"

    def _decode(self, token: str, now: float) -> TokenClaims:
        prefix, _, rest = token.partition(".")
        payload, _, signature = rest.partition(".")
        if prefix != TOKEN_PREFIX or not payload or not signature:
            raise Unauthorized("bearer token is malformed (not a drlab token)")
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise Unauthorized("bearer token signature is invalid (forged or from another lab)")
        try:
            claims = json.loads(_b64decode(payload))
        except (binascii.Error, ValueError):
            raise Unauthorized("bearer token payload is not readable") from None
        username, kind, expires_at = claims.get("sub"), claims.get("typ"), claims.get("exp")
        if not isinstance(username, str) or not isinstance(kind, str):
            raise Unauthorized("bearer token payload lacks subject or type")
        if not isinstance(expires_at, int | float) or expires_at <= now:
            raise Unauthorized("bearer token has expired")
        if self._users.get(username) is None:
            raise Unauthorized(f"bearer token is for unknown user {username!r}")
        return TokenClaims(username, kind, float(expires_at))

    def authenticate(self, authorization: str | None, now: float) -> User:
        """Return the user an ``Authorization: Bearer`` header stands for, or raise."""
        if not authorization:
            raise Unauthorized("missing Authorization header (expected 'Bearer <token>')")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization header must be 'Bearer <token>'")
        claims = self._decode(token.strip(), now)
        if claims.kind != "access":
            raise Unauthorized("a refresh token cannot be used as a bearer token")
        user = self._users.get(claims.username)
        assert user is not None  # checked by _decode
        return user

    def grant(
        self, form: Mapping[str, str], authorization: str | None, now: float
    ) -> dict[str, Any]:
        """Answer a token request (RFC 6749 §4.3.2 password grant, §6 refresh)."""
        if authorization:
            self._check_client_credentials(authorization)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise AuthError("invalid_request", "parameter 'grant_type' is missing")
        if grant_type == "password":
            user = self._password_user(form)
        elif grant_type == "refresh_token":
            user = self._refresh_user(form, now)
        else:
            raise AuthError(
                "unsupported_grant_type",
                f"grant_type {grant_type!r} is not supported (use 'password' or 'refresh_token')",
            )
        return {
            "access_token": self._issue(user.username, "access", now, self._ttl),
            "token_type": "bearer",
            "expires_in": int(self._ttl),
            "refresh_token": self._issue(user.username, "refresh", now, self._ttl * 24),
            "scope": form.get("scope") or "*",
        }

    @staticmethod
    def _check_client_credentials(authorization: str) -> None:
        scheme, _, encoded = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            raise AuthError(
                "invalid_client", "client authentication must use the Basic scheme", 401
            )
        try:
            client_id, sep, _ = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError("invalid_client", "Basic credentials are not base64", 401) from None
        if not sep or not client_id:
            raise AuthError("invalid_client", "Basic credentials must be client_id:secret", 401)

    def _password_user(self, form: Mapping[str, str]) -> User:
        username, password = form.get("username"), form.get("password")
        if not username or password is None:
            raise AuthError("invalid_request", "password grant needs 'username' and 'password'")
        # Genesys Authentication accepts "tenant\\user" names; the lab has one tenant.
        user = self._users.get(username.rpartition("\\")[2])
        if user is None or not hmac.compare_digest(user.password, password):
            raise AuthError("invalid_grant", "bad credentials")
        return user

    def _refresh_user(self, form: Mapping[str, str], now: float) -> User:
        token = form.get("refresh_token")
        if not token:
            raise AuthError("invalid_request", "refresh grant needs 'refresh_token'")
        try:
            claims = self._decode(token, now)
        except Unauthorized as exc:
            raise AuthError("invalid_grant", exc.message) from None
        if claims.kind != "refresh":
            raise AuthError("invalid_grant", "token is not a refresh token")
        user = self._users.get(claims.username)
        assert user is not None
        return user
