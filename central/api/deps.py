"""FastAPI dependencies: the services of this app, a DB session, who is calling."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel
from sqlmodel import Session

from central.audit.log import AuditLog
from central.complaints.service import ComplaintService
from central.errors import AuthError
from central.guidance.service import GuidanceService
from central.ingest.sink import EventConsumer, EventSink
from central.messaging.link import CentralLink
from central.messaging.live import Broadcaster
from central.messaging.outbound import Sender
from central.metrics import Metrics
from central.models import ROLES
from central.operators.access import Access, ForbiddenError
from central.operators.auth import Principal, read_token
from central.operators.sessions import check_principal
from central.ota.service import OtaService
from central.plates.service import PlateService
from central.police.service import PoliceService
from central.settings import CentralSettings
from central.signals.service import SignalService
from edge.clock import Clock
from provisioning.ca import FleetCA


@dataclass
class Services:
    """Everything a request handler may use; built once per app."""

    settings: CentralSettings
    engine: sa.Engine
    metrics: Metrics
    clock: Clock
    broadcaster: Broadcaster
    audit: AuditLog
    link: CentralLink | None = None
    ca: FleetCA | None = None
    access: Access = field(default_factory=Access)
    police: PoliceService | None = None
    plates: PlateService | None = None
    complaints: ComplaintService | None = None
    ota: OtaService | None = None
    signals: SignalService | None = None
    guidance: GuidanceService | None = None

    def sink(self) -> EventSink:
        """The event sink over this process's services (one way in for events)."""
        consumers: list[EventConsumer] = [
            s
            for s in (
                self.police,
                self.plates,
                self.complaints,
                self.ota,
                self.signals,
                self.guidance,
            )
            if s is not None
        ]
        return EventSink(consumers=consumers, audit=self.audit)


oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_services(request: Request) -> Services:
    """Return the app's services."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    """Open a session for one request."""
    with Session(services.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def _principal(
    services: ServicesDep,
    token: Annotated[str | None, Depends(oauth2)],
) -> Principal:
    # Only the Authorization header: a token in the URL ends up in access
    # logs and browser history (event streams use a ticket instead).
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "not authenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )
    now = services.clock.now()
    try:
        claimed = read_token(token, secret=services.settings.jwt_secret, now=now)
        return check_principal(services.engine, claimed, now=now)
    except AuthError as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            str(exc),
            headers={"WWW-Authenticate": "Bearer"},
        ) from exc


PrincipalDep = Annotated[Principal, Depends(_principal)]


def require(*roles: str) -> Callable[[Principal], Principal]:
    """A dependency that admits admins and the given roles."""
    allowed = {"admin", *roles}

    def check(principal: PrincipalDep) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {principal.role!r} may not do this; "
                f"needs one of {sorted(allowed)}",
            )
        return principal

    check.__permission__ = ("roles", "|".join(sorted(allowed)))  # type: ignore[attr-defined]
    return check


def permit(
    obj: str, act: str, *, any_of: tuple[str, ...] = ()
) -> Callable[..., Principal]:
    """A dependency: the caller's role holds ``act`` on ``obj`` in some district.

    This is the route-level gate of the permission matrix
    (:data:`central.operators.access.GRANTS`); the handler then checks the district of
    the object it touches with :func:`check_scope`. The returned callable
    carries ``__permission__`` so a test can prove every route declares one.
    ``any_of`` names the concrete resources when ``obj`` is a family (for
    ``devices/{kind}``: the role needs the action on at least one kind).
    """
    names = any_of or (obj,)

    def check(services: ServicesDep, principal: PrincipalDep) -> Principal:
        if not any(
            services.access.role_allows(principal.role, obj=name, act=act)
            for name in names
        ):
            roles = [
                role
                for role in ROLES
                if any(
                    services.access.role_allows(role, obj=name, act=act)
                    for name in names
                )
            ]
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"expected a role that may {act} {obj} (one of {roles}), "
                f"got {principal.role!r}",
            )
        return principal

    check.__permission__ = (obj, act)  # type: ignore[attr-defined]
    return check


def scraper(
    services: ServicesDep, token: Annotated[str | None, Depends(oauth2)]
) -> None:
    """Who may read ``/metrics``: the scrape token (``metrics_token``) or an admin.

    Raises:
        HTTPException: 401 without a credential, 403 for a role without
            ``metrics`` read.
    """
    configured = services.settings.metrics_token
    if (
        token
        and configured
        and hmac.compare_digest(token.encode(), configured.encode())
    ):
        return
    principal = _principal(services, token)
    if not services.access.role_allows(principal.role, obj="metrics", act="read"):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"expected the scrape token or an admin, got role {principal.role!r}",
        )


scraper.__permission__ = ("metrics", "read")  # type: ignore[attr-defined]


def public(why: str) -> Callable[[], None]:
    """A dependency that marks a route as deliberately open, and says why."""

    def mark() -> None:
        return None

    mark.__public__ = why  # type: ignore[attr-defined]
    return mark


def may(
    services: Services, principal: Principal, *, site: str, obj: str, act: str
) -> bool:
    """Whether the matrix lets ``principal`` ``act`` on ``obj`` at ``site``."""
    return services.access.allowed(principal, site=site, obj=obj, act=act)


def check_scope(
    services: Services, principal: Principal, *, site: str, obj: str, act: str
) -> None:
    """403 unless the operator's role and district scope allow this."""
    try:
        services.access.check(principal, site=site, obj=obj, act=act)
    except ForbiddenError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc


def police(services: Services) -> PoliceService:
    """The police service, or 503 where this process has none."""
    if services.police is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "no police service configured"
        )
    return services.police


def plates(services: Services) -> PlateService:
    """The plate service, or 503 where this process has none."""
    if services.plates is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "no plate service configured"
        )
    return services.plates


def complaints(services: Services) -> ComplaintService:
    """The complaints service (every app has one; built on demand for tests)."""
    if services.complaints is None:
        services.complaints = ComplaintService(
            clock=services.clock,
            sender=Sender(
                clock=services.clock,
                broadcaster=services.broadcaster,
                audit=services.audit,
            ),
        )
    return services.complaints


def fleet_ca(services: Services) -> FleetCA:
    """The fleet CA, or 503 where this process has none."""
    if services.ca is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "no fleet CA configured"
        )
    return services.ca


class ErrorBody(BaseModel):
    """What every refusal answers: what was wrong, in words."""

    detail: str


def refusal(why: str) -> dict[str, Any]:
    """An error answer for an operation's ``responses``."""
    return {"model": ErrorBody, "description": why}


# The refusals any operation may answer (the document says so, and the
# OpenAPI fuzz test holds central to it); 422 is FastAPI's own.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: refusal("The request is malformed or breaks a rule; ``detail`` says which"),
    401: refusal("Not signed in, or the token is not valid"),
    403: refusal("The operator's role or scope does not allow this"),
    404: refusal("No such object (device, complaint, plan, ...)"),
    409: refusal("The object's state does not allow this now"),
}


MAX_ROW = 2**31 - 1  # the largest row id (PostgreSQL INTEGER) an id may name
RowId = Annotated[int, Path(ge=1, le=MAX_ROW, description="a row id")]
