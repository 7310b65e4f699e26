"""The FastAPI application factory.

``create_app`` takes everything it needs as arguments — settings, engine,
metrics, the broker link — and builds no engine or settings itself, so tests
and several workers can build as many apps as they like.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
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


# A console asking for batches gets officer positions, which arrive by the
# hundred a second, gathered: the latest of each officer, at most this often,
# as one "officers" event (one message for the browser to handle, not one a
# position). Everything else goes out as it comes, held positions first.
BATCH_S = 0.25


class _HeldPositions:
    """Officer positions held for the next batch: the latest of each officer."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.items: dict[str, dict[str, Any]] = {}
        self.due: float | None = None  # when they go out

    def hold(self, item: dict[str, Any] | None, now: float) -> bool:
        """Keep ``item`` for the batch if it is a position to gather."""
        if not self.enabled or item is None or item.get("type") != "officer":
            return False
        key = str(item.get("device", ""))
        # A later report without a fix keeps the earlier position.
        self.items[key] = {**self.items.get(key, {}), **item}
        if self.due is None:
            self.due = now + BATCH_S
        return True

    async def release(
        self,
        now: float,
        *,
        other: bool,
        visible: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    ) -> str:
        """The batch event when it is due (or ``other`` must follow it), or ''."""
        if self.due is None or not (other or now >= self.due):
            return ""
        shown = await asyncio.to_thread(visible, self.take())
        return _event({"type": "officers", "items": shown}) if shown else ""

    def wait(self, now: float) -> float:
        return RECHECK_S if self.due is None else max(0.0, self.due - now)

    def take(self) -> list[dict[str, Any]]:
        items = list(self.items.values())
        self.items.clear()
        self.due = None
        return items


async def _next(queue: asyncio.Queue[dict[str, Any]], wait: float) -> Any:  # noqa: ANN401
    try:
        return await asyncio.wait_for(queue.get(), timeout=wait)
    except TimeoutError:
        return None


def _event(item: dict[str, Any]) -> str:
    return f"data: {json.dumps(item, ensure_ascii=False)}\n\n"


async def _signed_in(svc: Services, who: Principal) -> bool:
    try:
        await asyncio.to_thread(check_principal, svc.engine, who, now=svc.clock.now())
    except AuthError:
        return False
    return True


async def _events(
    svc: Services,
    who: Principal,
    queue: asyncio.Queue[dict[str, Any]],
    *,
    batch: bool,
) -> AsyncIterator[str]:
    devices: dict[str, tuple[str, str]] = {}  # id -> (kind, site), this stream's

    def visible(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # The permission matrix holds for live updates too.
        return [item for item in items if _may_see(svc, who, item, devices)]

    loop = asyncio.get_running_loop()
    checked = loop.time()
    held = _HeldPositions(enabled=batch)
    try:
        yield "retry: 2000\n\n"
        while True:
            idle = held.due is None
            item = await _next(queue, held.wait(loop.time()))
            if loop.time() - checked >= RECHECK_S:
                # The stream ends with its session (logout, disable, ...).
                checked = loop.time()
                if not await _signed_in(svc, who):
                    return
            if held.hold(item, loop.time()):
                item = None
            if out := await held.release(
                loop.time(), other=item is not None, visible=visible
            ):
                yield out
            if item is None:
                if idle and held.due is None:
                    yield ": keep-alive\n\n"
                continue
            shown = await asyncio.to_thread(visible, [item])
            if shown:
                yield _event(item)
    finally:
        svc.broadcaster.unsubscribe(queue)


async def stream(
    svc: ServicesDep,
    who: Annotated[Principal, Depends(_ticket_holder)],
    batch: Annotated[bool, Query()] = False,  # noqa: FBT002 - a query flag
) -> StreamingResponse:
    """Server-sent events: device changes as they are committed.

    EventSource cannot send headers, so the stream opens with a
    single-use ticket from ``POST /api/v1/stream/ticket``; the stream
    ends when its session does. With ``batch=true`` officer positions
    come gathered, every 250 ms at most, as ``{"type": "officers",
    "items": [...]}`` (the latest of each officer); without it, one event
    each.
    """
    queue = svc.broadcaster.subscribe()
    return StreamingResponse(
        _events(svc, who, queue, batch=batch),
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
