"""The FastAPI application factory.

``create_app`` takes everything it needs as arguments — settings, engine,
metrics, the broker link — and builds no engine or settings itself, so tests
and several workers can build as many apps as they like.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from sqlmodel import Session

from central.api import audit as audit_routes
from central.api import auth as auth_routes
from central.api import (
    complaints,
    device_page,
    devices,
    enrolment,
    guidance,
    kinds,
    kiosk,
    maps,
    open311,
    ota,
    plates,
    police,
    policy,
    signals,
)
from central.api.bodylimit import BodyLimitMiddleware
from central.api.deps import ERRORS, Services, ServicesDep, scraper
from central.api.docs import mount_docs
from central.api.validation import validation_handler
from central.errors import (
    AuthError,
    ConflictError,
    InvalidError,
    NotFoundError,
    PolicyError,
)
from central.messaging.link import CommandTimeoutError, PacketTooLargeError
from central.models import Device
from central.operators.access import live_device, live_permission
from central.operators.auth import Principal
from central.operators.sessions import check_principal, redeem_ticket
from edge.protocol import PayloadError
from provisioning.errors import ProvisioningError

logger = logging.getLogger(__name__)

CONSOLE = Path(__file__).parent / "console"


def _error(code: int) -> Any:  # noqa: ANN401 - FastAPI handler signature
    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=code)

    return handler


# How often an open event stream re-checks its session (and sends a keep-alive
# when idle).
RECHECK_S = 15.0


def _redeem(svc: Services, ticket: str) -> Principal:
    with Session(svc.engine) as session:
        return redeem_ticket(session, ticket, now=svc.clock.now())


async def _ticket_holder(
    svc: ServicesDep, ticket: Annotated[str, Query(min_length=1, max_length=128)]
) -> Principal:
    try:
        return await asyncio.to_thread(_redeem, svc, ticket)
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from exc


# Any signed-in operator, proven by a single-use ticket instead of a token.
_ticket_holder.__permission__ = ("stream", "ticket")  # type: ignore[attr-defined]


def _may_see(
    svc: Services,
    who: Principal,
    item: dict[str, Any],
    devices: dict[str, tuple[str, str]],
) -> bool:
    """Whether the matrix lets ``who`` read what a live update reveals."""
    device = live_device(item)
    if device and device not in devices:
        with Session(svc.engine) as session:
            row = session.get(Device, device)
        devices[device] = (row.kind, row.site) if row is not None else ("", "")
    kind, site = devices.get(device, ("", ""))
    if not device and item.get("type") == "rollout":
        site = str(item.get("site") or "*")  # a county rollout: county readers
    obj, act = live_permission(item, kind=kind)
    if site:
        return svc.access.allowed(who, site=site, obj=obj, act=act)
    return svc.access.role_allows(who.role, obj=obj, act=act)


async def stream(
    svc: ServicesDep, who: Annotated[Principal, Depends(_ticket_holder)]
) -> StreamingResponse:
    """Server-sent events: device changes as they are committed.

    EventSource cannot send headers, so the stream opens with a
    single-use ticket from ``POST /api/v1/stream/ticket``; the stream
    ends when its session does.
    """
    queue = svc.broadcaster.subscribe()
    devices: dict[str, tuple[str, str]] = {}  # id -> (kind, site), this stream's

    async def events() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        checked = loop.time()
        try:
            yield "retry: 2000\n\n"
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=RECHECK_S)
                except TimeoutError:
                    item = None
                if loop.time() - checked >= RECHECK_S:
                    # The stream ends with its session (logout, disable, ...).
                    checked = loop.time()
                    try:
                        await asyncio.to_thread(
                            check_principal, svc.engine, who, now=svc.clock.now()
                        )
                    except AuthError:
                        return
                if item is None:
                    yield ": keep-alive\n\n"
                    continue
                if not await asyncio.to_thread(_may_see, svc, who, item, devices):
                    continue  # the permission matrix holds for live updates too
                yield f"data: {json.dumps(item, ensure_ascii=False)}\n\n"
        finally:
            svc.broadcaster.unsubscribe(queue)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


def create_app(services: Services) -> FastAPI:
    """Build the API and console app around ``services``."""
    app = FastAPI(
        title="Baling central",
        version="0.1.0",
        description="数字巴陵 device fleet: registry, policy, ingest, consoles.",
        docs_url=None,  # served from packaged assets (central.api.docs)
        redoc_url=None,
    )
    mount_docs(app)
    app.state.services = services
    for router in (
        auth_routes.router,
        devices.router,
        device_page.router,
        kinds.router,
        policy.router,
        audit_routes.router,
        enrolment.router,
        police.router,
        police.osmand_router,
        plates.router,
        complaints.router,
        complaints.content_router,
        kiosk.router,
        maps.router,
        open311.router,
        ota.router,
        signals.router,
        guidance.router,
    ):
        app.include_router(router, responses=ERRORS)
    # The TUF repositories nodes update from (behind the fleet's mutual TLS in
    # a deployment): /ota/image/... and /ota/director/<device>/...
    ota_dir = services.settings.data_dir / "ota"
    ota_dir.mkdir(parents=True, exist_ok=True)
    if services.settings.ota_plain_http:  # dev/test: central.ota.server is the real one
        app.mount("/ota", StaticFiles(directory=ota_dir), name="ota")
    app.add_exception_handler(RequestValidationError, validation_handler)  # type: ignore[arg-type]
    app.add_exception_handler(NotFoundError, _error(status.HTTP_404_NOT_FOUND))
    app.add_exception_handler(ConflictError, _error(status.HTTP_409_CONFLICT))
    app.add_exception_handler(
        PolicyError, _error(status.HTTP_422_UNPROCESSABLE_CONTENT)
    )
    app.add_exception_handler(
        PayloadError, _error(status.HTTP_422_UNPROCESSABLE_CONTENT)
    )
    # Only central's and provisioning's refusals are 422: another ValueError
    # escaping a route is a programming error and answers 500.
    app.add_exception_handler(
        InvalidError, _error(status.HTTP_422_UNPROCESSABLE_CONTENT)
    )
    app.add_exception_handler(
        ProvisioningError, _error(status.HTTP_422_UNPROCESSABLE_CONTENT)
    )
    app.add_exception_handler(AuthError, _error(status.HTTP_401_UNAUTHORIZED))
    app.add_exception_handler(
        CommandTimeoutError, _error(status.HTTP_504_GATEWAY_TIMEOUT)
    )
    app.add_exception_handler(
        PacketTooLargeError, _error(status.HTTP_413_CONTENT_TOO_LARGE)
    )
    # Bodies are bounded before any route reads them (docs/security.md).
    app.add_middleware(BodyLimitMiddleware)

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(scraper)])
    def metrics(svc: ServicesDep) -> Response:
        return Response(svc.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/healthz", tags=["system"])
    def healthz(svc: ServicesDep) -> dict[str, Any]:
        """Liveness: the process answers and says whether its broker link is up."""
        return {"ok": True, "broker": bool(svc.link and svc.link.bus.connected)}

    app.add_api_route(
        "/api/v1/stream", stream, methods=["GET"], tags=["system"], responses=ERRORS
    )

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/")

    app.mount("/console", StaticFiles(directory=CONSOLE, html=True), name="console")
    return app
