"""Operator passwords, the password policy, JWT access tokens and roles.

Passwords are hashed with Argon2 (pwdlib). An access token is a short-lived
HS256 JWT naming the operator, role, scope, the session it belongs to
(``sid``) and the operator's session epoch (``ver``) it was issued under;
whether that session and epoch still hold is checked against the database
by :mod:`central.operators.sessions` on every request. Sessions, refresh tokens and
the login throttle live there; the FastAPI dependencies that enforce roles
live in :mod:`central.api.deps`. This module does no HTTP.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import jwt
from pwdlib import PasswordHash

from central.errors import AuthError, CentralError, ConflictError, InvalidError
from central.models import ROLES, Operator

if TYPE_CHECKING:
    from sqlmodel import Session

_hasher = PasswordHash.recommended()
_ALGORITHM = "HS256"
MAX_USERNAME = 64
MIN_PASSWORD = 12
MAX_PASSWORD = 256
MIN_DISTINCT = 5


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as proven by a token (and, for a session, the database)."""

    username: str
    role: str
    scope: tuple[str, ...] = ("*",)
    session_id: str = ""
    epoch: int = 0


class PasswordPolicyError(CentralError, ValueError):
    """A new password breaks the minimum policy."""


def check_password_policy(password: str, *, username: str) -> None:
    """Refuse a password that is too short, too simple or names the user.

    Raises:
        PasswordPolicyError: saying which rule it broke.
    """
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise PasswordPolicyError(
            f"expected a password of {MIN_PASSWORD} to {MAX_PASSWORD} characters, "
            f"got {len(password)}"
        )
    if len(set(password)) < MIN_DISTINCT:
        raise PasswordPolicyError(
            f"expected at least {MIN_DISTINCT} different characters in the "
            f"password, got {len(set(password))}"
        )
    if username and username.lower() in password.lower():
        raise PasswordPolicyError(
            "expected a password that does not contain the username, got one that does"
        )


def hash_password(password: str) -> str:
    """Hash a password for storage."""
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    """Whether ``password`` matches a stored hash."""
    return _hasher.verify(password, password_hash)


@functools.cache
def _dummy_hash() -> str:
    # Verified against when the user is unknown, so an unknown name costs
    # the same Argon2 work as a known one and timing does not tell them apart.
    return _hasher.hash("baling-dummy-password-for-unknown-users")


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
        ValueError: unknown role, or a password that breaks the policy.
    """
    if role not in ROLES:
        raise InvalidError(f"expected a role of {ROLES}, got {role!r}")
    check_password_policy(password, username=username)
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


def authenticate(session: Session, username: str, password: str) -> Operator:
    """Check a username and password, in the same time whether the user exists.

    Raises:
        AuthError: unknown user, inactive, or wrong password (one message for all).
    """
    dummy = _dummy_hash()
    op = session.get(Operator, username) if len(username) <= MAX_USERNAME else None
    # Argon2 runs on every path: against the stored hash, or a dummy one.
    ok = _hasher.verify(password, op.password_hash if op is not None else dummy)
    if op is None or not ok or not op.active:
        raise AuthError("incorrect username or password")
    return op


def issue_token(
    principal: Principal, *, secret: str, now: datetime, ttl: timedelta
) -> str:
    """Return a signed access token for ``principal``."""
    claims = {
        "sub": principal.username,
        "role": principal.role,
        "scope": list(principal.scope),
        "sid": principal.session_id,
        "ver": principal.epoch,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def read_token(token: str, *, secret: str, now: datetime) -> Principal:
    """Verify a token's signature and expiry and return its principal.

    Whether its session and the operator's epoch still hold is for
    :func:`central.operators.sessions.check_principal` to say.

    Raises:
        AuthError: bad signature, expired, wrong type, or missing claims.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            options={
                "verify_exp": False,
                "require": ["sub", "role", "exp", "sid", "ver", "typ"],
            },
        )
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from exc
    if claims["typ"] != "access":
        raise AuthError(f"expected an access token, got type {claims['typ']!r}")
    if int(claims["exp"]) < now.replace(tzinfo=UTC).timestamp():
        raise AuthError("token expired")
    if claims["role"] not in ROLES:
        raise AuthError(f"token names unknown role {claims['role']!r}")
    scope = claims.get("scope", ["*"])
    if not isinstance(scope, list) or not all(isinstance(s, str) for s in scope):
        raise AuthError("token names a malformed scope")
    if not isinstance(claims["ver"], int) or not isinstance(claims["sid"], str):
        raise AuthError("token names a malformed session")
    return Principal(
        username=str(claims["sub"]),
        role=str(claims["role"]),
        scope=tuple(scope),
        session_id=claims["sid"],
        epoch=claims["ver"],
    )
