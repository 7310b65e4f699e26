"""Login (OAuth2 password flow → JWT) and operator management."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlmodel import select

from central import auth
from central.api.deps import PrincipalDep, ServicesDep, SessionDep, require
from central.auth import Principal
from central.errors import AuthError
from central.models import Operator

router = APIRouter(prefix="/api/v1", tags=["auth"])


class Token(BaseModel):
    """An OAuth2 bearer token."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    role: str
    expires_in: int


class OperatorIn(BaseModel):
    """A new operator."""

    username: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_.-]{2,64}$")]
    password: Annotated[str, Field(min_length=10, max_length=256)]
    role: str
    scope: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=lambda: ["*"], min_length=1
    )


@router.post("/auth/token")
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    services: ServicesDep,
    session: SessionDep,
) -> Token:
    """Exchange a username and password for an access token."""
    try:
        principal = auth.authenticate(session, form.username, form.password)
    except AuthError as exc:
        services.audit.append(
            actor=form.username[:64], action="login.failed", now=services.clock.now()
        )
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            str(exc),
            headers={"WWW-Authenticate": "Bearer"},
        ) from exc
    ttl = services.settings.jwt_ttl_s
    token = auth.issue_token(
        principal,
        secret=services.settings.jwt_secret,
        now=services.clock.now(),
        ttl=timedelta(seconds=ttl),
    )
    return Token(access_token=token, role=principal.role, expires_in=ttl)


@router.get("/auth/me")
def me(principal: PrincipalDep) -> dict[str, str]:
    """Who the token belongs to."""
    return {"username": principal.username, "role": principal.role}


@router.post("/operators", status_code=status.HTTP_201_CREATED)
def add_operator(
    body: OperatorIn,
    services: ServicesDep,
    session: SessionDep,
    _admin: Annotated[Principal, Depends(require())],
) -> dict[str, Any]:
    """Add an operator (admin only)."""
    op = auth.create_operator(
        session,
        username=body.username,
        password=body.password,
        role=body.role,
        now=services.clock.now(),
        scope=body.scope,
    )
    services.audit.append(
        actor=_admin.username,
        action="operator.create",
        target=op.username,
        detail={"role": op.role},
        now=services.clock.now(),
    )
    return {"username": op.username, "role": op.role, "scope": op.scope}


@router.get("/operators")
def list_operators(
    session: SessionDep, _admin: Annotated[Principal, Depends(require())]
) -> list[dict[str, Any]]:
    """List operators (admin only)."""
    return [
        {"username": o.username, "role": o.role, "active": o.active}
        for o in session.exec(select(Operator)).all()
    ]
