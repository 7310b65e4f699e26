"""Operator passwords, JWT access tokens and roles.

Passwords are hashed with Argon2 (pwdlib); tokens are HS256 JWTs carrying the
username and role. The FastAPI dependencies that enforce roles live in
:mod:`central.api.deps`; this module does no HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import jwt
from pwdlib import PasswordHash

from central.errors import AuthError, ConflictError
from central.models import ROLES, Operator

if TYPE_CHECKING:
    from sqlmodel import Session

_hasher = PasswordHash.recommended()
_ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as proven by a token."""

    username: str
    role: str
    scope: tuple[str, ...] = ("*",)


def hash_password(password: str) -> str:
    """Hash a password for storage."""
    return _hasher.hash(password)


def create_operator(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    now: datetime,
    scope: list[str] | None = None,
) -> Operator:
    """Add an operator.

    Raises:
        ConflictError: the username exists.
        ValueError: unknown role or too short a password.
    """
    if role not in ROLES:
        raise ValueError(f"expected a role of {ROLES}, got {role!r}")
    if len(password) < 10:  # noqa: PLR2004
        raise ValueError("expected a password of at least 10 characters")
    if session.get(Operator, username) is not None:
        raise ConflictError(f"operator {username!r} exists")
    op = Operator(
        username=username,
        password_hash=hash_password(password),
        role=role,
        scope=scope or ["*"],
        created_at=now,
    )
    session.add(op)
    session.commit()
    return op


def authenticate(session: Session, username: str, password: str) -> Principal:
    """Check a username and password.

    Raises:
        AuthError: unknown user, inactive, or wrong password (one message for all).
    """
    op = session.get(Operator, username)
    if op is None or not op.active or not _hasher.verify(password, op.password_hash):
        raise AuthError("incorrect username or password")
    return Principal(username=op.username, role=op.role, scope=tuple(op.scope))


def issue_token(
    principal: Principal, *, secret: str, now: datetime, ttl: timedelta
) -> str:
    """Return a signed access token for ``principal``."""
    claims = {
        "sub": principal.username,
        "role": principal.role,
        "scope": list(principal.scope),
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def read_token(token: str, *, secret: str, now: datetime) -> Principal:
    """Verify a token and return its principal.

    Raises:
        AuthError: bad signature, expired, or missing claims.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            options={"verify_exp": False, "require": ["sub", "role", "exp"]},
        )
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from exc
    if int(claims["exp"]) < now.replace(tzinfo=UTC).timestamp():
        raise AuthError("token expired")
    if claims["role"] not in ROLES:
        raise AuthError(f"token names unknown role {claims['role']!r}")
    scope = claims.get("scope", ["*"])
    if not isinstance(scope, list) or not all(isinstance(s, str) for s in scope):
        raise AuthError("token names a malformed scope")
    return Principal(
        username=str(claims["sub"]), role=str(claims["role"]), scope=tuple(scope)
    )
