"""Login, refresh, logout, stream tickets, and operator management.

Login is the OAuth2 password flow: the answer's body carries a short-lived
access token, and an httpOnly cookie (path ``/api/v1/auth``, SameSite
Strict) carries the session's refresh token, which scripts on the page can
never read. Failed logins are throttled per account and per address
(:mod:`central.operators.throttle`) and audited once per lockout, not once per
failure. Operators are managed here by admins; every change is audited and
ends the operator's sessions. Session storage is :mod:`central.operators.sessions`.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Cookie,
    Depends,
    HTTPException,
    Request,
    Response,
    status,
)
from fastapi import (
    Path as PathParam,
)
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from central.api.deps import (
    PrincipalDep,
    Services,
    ServicesDep,
    SessionDep,
    refusal,
    require,
)
from central.errors import AuthError
from central.models import ROLES, Operator, as_utc
from central.operators import auth, sessions, throttle
from central.operators.auth import Principal

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["auth"])

REFRESH_COOKIE = "baling_refresh"
COOKIE_PATH = "/api/v1/auth"
SiteCode = Annotated[str, Field(pattern=r"^(\*|[a-z0-9_-]{1,64})$", max_length=64)]
TOO_MANY: dict[int | str, dict[str, Any]] = {
    429: refusal("Too many failed logins; wait ``Retry-After`` seconds")
}


class Token(BaseModel):
    """An OAuth2 bearer token."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    role: str
    expires_in: int


class Ticket(BaseModel):
    """A single-use ticket for ``/api/v1/stream?ticket=``."""

    ticket: str
    expires_in: int


class OperatorIn(BaseModel):
    """A new operator; without a password, a one-time one is made and shown once."""

    username: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_.-]{2,64}$", max_length=64)]
    password: Annotated[str | None, Field(min_length=1, max_length=256)] = None
    role: str = Field(max_length=32)
    scope: list[SiteCode] = Field(
        default_factory=lambda: ["*"], min_length=1, max_length=64
    )


class OperatorPatch(BaseModel):
    """A change to an operator: any of active, role and scope."""

    active: bool | None = None
    role: str | None = Field(default=None, max_length=32)
    scope: list[SiteCode] | None = Field(default=None, min_length=1, max_length=64)


class PasswordIn(BaseModel):
    """A password to set; none makes a one-time password, shown once."""

    password: Annotated[str | None, Field(min_length=1, max_length=256)] = None


class OwnPasswordIn(BaseModel):
    """An operator changing their own password."""

    current: Annotated[str, Field(min_length=1, max_length=256)]
    new: Annotated[str, Field(min_length=1, max_length=256)]


class OperatorOut(BaseModel):
    """An operator as admins see it (never the hash)."""

    username: str
    role: str = Field(max_length=32)
    scope: list[str]
    active: bool
    created_at: datetime
    one_time_password: str | None = None


def _out(op: Operator, one_time: str | None = None) -> OperatorOut:
    return OperatorOut(
        username=op.username,
        role=op.role,
        scope=list(op.scope),
        active=op.active,
        created_at=as_utc(op.created_at),
        one_time_password=one_time,
    )


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _set_refresh(
    response: Response, request: Request, token: str, services: Services
) -> None:
    response.set_cookie(
        REFRESH_COOKIE,
        token,
        max_age=services.settings.session_ttl_s,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _access(principal: Principal, services: Services, now: datetime) -> Token:
    ttl = services.settings.jwt_ttl_s
    token = auth.issue_token(
        principal,
        secret=services.settings.jwt_secret,
        now=now,
        ttl=timedelta(seconds=ttl),
    )
    return Token(access_token=token, role=principal.role, expires_in=ttl)


def _unauthorized(why: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, why, headers={"WWW-Authenticate": "Bearer"}
    )


@router.post("/auth/token", responses=TOO_MANY)
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    response: Response,
    services: ServicesDep,
    session: SessionDep,
) -> Token:
    """Exchange a username and password for an access token (and refresh cookie)."""
    now = services.clock.now()
    username = form.username[:64]
    address = _address(request)
    keys = [f"user:{username}", f"addr:{address}"]
    # Counted before Argon2 runs, atomically: a burst of guesses cannot all
    # pass the check before any of them is counted.
    wait, locked = sessions.reserve_attempt(
        session,
        [(keys[0], throttle.ACCOUNT_POLICY), (keys[1], throttle.ADDRESS_POLICY)],
        now=now,
    )
    if wait:
        services.metrics.login_failures.labels("throttled").inc()
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed logins; expected a retry after {wait} s, got one sooner",
            headers={"Retry-After": str(wait)},
        )
    try:
        op = auth.authenticate(session, form.username, form.password)
    except AuthError as exc:
        services.metrics.login_failures.labels("credentials").inc()
        for key, state in locked:
            kind, _sep, name = key.partition(":")
            services.metrics.login_lockouts.labels(
                "account" if kind == "user" else "address"
            ).inc()
            # One record per lockout, not per failure: an anonymous caller
            # cannot grow the chain faster than the back-off allows.
            services.audit.append(
                actor=f"anonymous@{address}"[:64],
                action="login.locked",
                target=name[:64],
                detail={
                    "by": "account" if kind == "user" else "address",
                    "failures": state.failures,
                    "until": state.locked_until.isoformat()
                    if state.locked_until
                    else "",
                },
                now=now,
            )
        raise _unauthorized(str(exc)) from exc
    sessions.clear_failures(session, keys[0])
    sessions.refund(session, keys[1])
    principal, refresh = sessions.open_session(
        session,
        op,
        now=now,
        ttl=timedelta(seconds=services.settings.session_ttl_s),
        address=address,
    )
    _set_refresh(response, request, refresh, services)
    return _access(principal, services, now)


@router.post("/auth/refresh")
def refresh(
    request: Request,
    response: Response,
    services: ServicesDep,
    session: SessionDep,
    baling_refresh: Annotated[str | None, Cookie(max_length=128)] = None,
) -> Token:
    """A new access token for the session in the refresh cookie (which rotates)."""
    now = services.clock.now()
    if not baling_refresh:
        raise _unauthorized("expected a refresh cookie, got none")
    try:
        done = sessions.rotate_refresh(session, baling_refresh, now=now)
    except sessions.RefreshReuseError as exc:
        services.audit.append(
            actor=f"anonymous@{_address(request)}"[:64],
            action="session.refresh_reuse",
            detail={"why": "a used refresh token came back; session revoked"},
            now=now,
        )
        response.delete_cookie(REFRESH_COOKIE, path=COOKIE_PATH)
        raise _unauthorized(str(exc)) from exc
    except AuthError as exc:
        raise _unauthorized(str(exc)) from exc
    if done.refresh_token is not None:
        _set_refresh(response, request, done.refresh_token, services)
    return _access(done.principal, services, now)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(
    principal: PrincipalDep, services: ServicesDep, session: SessionDep
) -> Response:
    """End this session: its access and refresh tokens stop working."""
    sessions.revoke_session(
        session, principal.session_id, now=services.clock.now(), why="logout"
    )
    answer = Response(status_code=status.HTTP_204_NO_CONTENT)
    answer.delete_cookie(REFRESH_COOKIE, path=COOKIE_PATH)
    return answer


@router.get("/auth/me")
def me(principal: PrincipalDep) -> dict[str, str]:
    """Who the token belongs to."""
    return {"username": principal.username, "role": principal.role}


@router.post(
    "/auth/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={429: refusal("Too many wrong passwords; wait ``Retry-After`` seconds")},
)
def change_own_password(
    body: OwnPasswordIn,
    principal: PrincipalDep,
    services: ServicesDep,
    session: SessionDep,
) -> Response:
    """Change one's own password; every session of the operator ends.

    ``current`` is guessed against the account's login throttle: a stolen
    15-minute token must not become a way to try passwords (red team 13).
    """
    now = services.clock.now()
    key = f"user:{principal.username}"
    wait, _locked = sessions.reserve_attempt(
        session, [(key, throttle.ACCOUNT_POLICY)], now=now
    )
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many wrong passwords; expected a retry after {wait} s, got one "
            "sooner",
            headers={"Retry-After": str(wait)},
        )
    op = session.get(Operator, principal.username)
    if op is None or not auth.verify_password(body.current, op.password_hash):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "expected the current password, got another"
        )
    sessions.clear_failures(session, key)
    _set_password(session, op, body.new, services=services, actor=op.username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/stream/ticket", tags=["system"])
def stream_ticket(
    principal: Annotated[Principal, Depends(require(*ROLES))],
    services: ServicesDep,
    session: SessionDep,
) -> Ticket:
    """A single-use ticket for the event stream (valid for a few seconds)."""
    ticket = sessions.issue_ticket(session, principal, now=services.clock.now())
    return Ticket(ticket=ticket, expires_in=int(sessions.TICKET_TTL.total_seconds()))


def county_admin(
    principal: Annotated[Principal, Depends(require())],
) -> Principal:
    """An admin of the whole county: operators are managed from ``*`` only.

    A district's admin (scope ``["north"]``) could otherwise make itself,
    or anyone, a county admin (red team 5).
    """
    if "*" not in principal.scope:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"expected an admin of the whole county (scope ['*']), got scope "
            f"{list(principal.scope)}",
        )
    return principal


county_admin.__permission__ = ("roles", "admin")  # type: ignore[attr-defined]
AdminDep = Annotated[Principal, Depends(county_admin)]


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"expected a role of {list(ROLES)}, got {role!r}",
        )


def _policy(password: str, username: str) -> None:
    try:
        auth.check_password_policy(password, username=username)
    except auth.PasswordPolicyError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc


def _one_time_password(username: str) -> str:
    while True:  # a random draw breaks the policy about once in 10**9 tries
        password = secrets.token_urlsafe(12)
        try:
            auth.check_password_policy(password, username=username)
        except auth.PasswordPolicyError:
            continue
        return password


def _operator(session: Session, username: str) -> Operator:
    op = session.get(Operator, username)
    if op is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"expected an operator, got unknown {username!r}"
        )
    return op


def _set_password(
    session: Session, op: Operator, password: str, *, services: Services, actor: str
) -> None:
    _policy(password, op.username)
    now = services.clock.now()
    op.password_hash = auth.hash_password(password)
    session.add(op)
    sessions.revoke_all(session, op.username, now=now, why="password")
    session.commit()
    services.audit.append(
        actor=actor, action="operator.password", target=op.username, now=now
    )


@router.get("/operators")
def list_operators(session: SessionDep, _admin: AdminDep) -> list[OperatorOut]:
    """List operators (admin only)."""
    ops = session.exec(select(Operator).order_by(col(Operator.username))).all()
    return [_out(o) for o in ops]


@router.post(
    "/operators",
    status_code=status.HTTP_201_CREATED,
    responses={409: refusal("The username exists")},
)
def add_operator(
    body: OperatorIn, services: ServicesDep, session: SessionDep, admin: AdminDep
) -> OperatorOut:
    """Add an operator (admin only); a one-time password is made if none is given."""
    _check_role(body.role)
    one_time = None if body.password is not None else _one_time_password(body.username)
    password = body.password if body.password is not None else one_time
    assert password is not None  # noqa: S101 - one of the two is set
    _policy(password, body.username)
    op = auth.create_operator(
        session,
        username=body.username,
        password=password,
        role=body.role,
        now=services.clock.now(),
        scope=list(body.scope),
    )
    services.audit.append(
        actor=admin.username,
        action="operator.create",
        target=op.username,
        detail={"role": op.role, "scope": list(op.scope)},
        now=services.clock.now(),
    )
    return _out(op, one_time)


def _other_active_admins(session: Session, username: str) -> int:
    # FOR UPDATE (PostgreSQL) serialises two admins demoting each other.
    rows = session.exec(
        select(Operator.username)
        .where(col(Operator.role) == "admin")
        .where(col(Operator.active).is_(True))
        .where(col(Operator.username) != username)
        .with_for_update()
    ).all()
    return len(rows)


@router.patch("/operators/{username}")
def update_operator(
    username: Annotated[str, PathParam(max_length=64)],
    body: OperatorPatch,
    services: ServicesDep,
    session: SessionDep,
    admin: AdminDep,
) -> OperatorOut:
    """Disable or enable an operator, change the role or the districts (admin only).

    Any change ends the operator's sessions. The last active admin cannot
    be disabled or given another role.
    """
    op = _operator(session, username)
    if body.role is not None:
        _check_role(body.role)
    changes: dict[str, Any] = {}
    if body.active is not None and body.active != op.active:
        changes["active"] = [op.active, body.active]
    if body.role is not None and body.role != op.role:
        changes["role"] = [op.role, body.role]
    if body.scope is not None and list(body.scope) != list(op.scope):
        changes["scope"] = [list(op.scope), list(body.scope)]
    if not changes:
        return _out(op)
    stays_admin = (body.active if body.active is not None else op.active) and (
        (body.role or op.role) == "admin"
    )
    if (
        op.role == "admin"
        and op.active
        and not stays_admin
        and not _other_active_admins(session, op.username)
    ):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "expected another active admin to remain, got none: "
            f"{op.username!r} is the last one",
        )
    now = services.clock.now()
    if body.active is not None:
        op.active = body.active
    if body.role is not None:
        op.role = body.role
    if body.scope is not None:
        op.scope = list(body.scope)
    session.add(op)
    sessions.revoke_all(session, op.username, now=now, why="operator-change")
    session.commit()
    session.refresh(op)
    services.audit.append(
        actor=admin.username,
        action="operator.update",
        target=op.username,
        detail=changes,
        now=now,
    )
    return _out(op)


@router.post("/operators/{username}/password")
def reset_password(
    username: Annotated[str, PathParam(max_length=64)],
    body: PasswordIn,
    services: ServicesDep,
    session: SessionDep,
    admin: AdminDep,
) -> OperatorOut:
    """Set an operator's password, or make a one-time one shown once (admin only)."""
    op = _operator(session, username)
    one_time = None if body.password is not None else _one_time_password(username)
    password = body.password if body.password is not None else one_time
    assert password is not None  # noqa: S101 - one of the two is set
    _set_password(session, op, password, services=services, actor=admin.username)
    session.refresh(op)
    return _out(op, one_time)
