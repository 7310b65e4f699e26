"""What a kiosk asks central: content, request types, status, appointments.

Public information only: a follow-up code (40 random bits) shows the state
and the answer of its own complaint, nothing else; the names and phone
numbers of real-name complaints never leave the desk. In a deployment
kiosks reach this over the fleet's mutual TLS.

Only enrolled kiosks may call: every request carries
``Authorization: Node <token>``, a JWT the kiosk signs for that one request
with the key of its fleet certificate (:mod:`edge.protocol.node_token`);
:func:`kiosk_caller` checks it with :mod:`central.fleet.node_auth` (fleet CA,
live certificate, registered unretired kiosk, no replay) and answers 401
(403 for another kind's node). Bookings, the one write, are bounded per
kiosk: at most :data:`BOOKINGS_PER_HOUR` an hour per kiosk and
:data:`BOOKINGS_PER_PHONE` open ones per phone number (429 past either);
unknown follow-up codes are throttled per kiosk.
"""

from __future__ import annotations

import json
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from sqlmodel import col, select

from central.api.deps import MAX_ROW, ServicesDep, SessionDep, refusal
from central.complaints import workflow
from central.complaints.models import Booking, Complaint, ContentItem, ServiceType, Slot
from central.errors import ConflictError, NotFoundError
from central.fleet import node_auth
from central.models import as_utc
from central.operators import sessions, throttle
from edge.protocol.complaints import new_code
from edge.protocol.node_token import SCHEME

BOOKINGS_PER_HOUR = 30  # per kiosk (a kiosk serves a queue of people)
BOOKINGS_PER_PHONE = 3  # bookings still to come per phone number
_TRACKED = 10_000  # kiosks remembered; the oldest windows go first
_CHALLENGE = {"WWW-Authenticate": f'{SCHEME} realm="kiosk"'}


def kiosk_caller(
    request: Request, session: SessionDep, svc: ServicesDep
) -> node_auth.NodeCaller:
    """The enrolled kiosk that signed this request (401/403 otherwise).

    Raises:
        HTTPException: 401 without a valid kiosk token, 403 for a node of
            another kind, 503 where this process has no fleet CA.
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != SCHEME.lower() or not token.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"expected 'Authorization: {SCHEME} <token>' signed with an enrolled "
            f"kiosk's fleet certificate, got {scheme[:20] or 'none'!r}",
            headers=_CHALLENGE,
        )
    if svc.ca is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "no fleet CA configured"
        )
    replay: node_auth.ReplayCache = request.app.state.__dict__.setdefault(
        "node_replay", node_auth.ReplayCache()
    )
    try:
        return node_auth.verify(
            session,
            token.strip(),
            root=svc.ca.root,
            issuing=svc.ca.intermediate,
            method=request.method,
            path=request.url.path,
            kinds=("kiosk",),
            replay=replay,
            now=svc.clock.now(),
        )
    except node_auth.NodeAuthError as exc:
        raise HTTPException(
            exc.status,
            f"kiosk credential refused: {exc}",
            headers=_CHALLENGE if exc.status == status.HTTP_401_UNAUTHORIZED else None,
        ) from exc


# What the route-permission test reads: a node credential, not an operator's.
kiosk_caller.__permission__ = ("kiosk-api", "enrolled kiosk")  # type: ignore[attr-defined]
KioskDep = Annotated[node_auth.NodeCaller, Depends(kiosk_caller)]

router = APIRouter(
    prefix="/api/v1/kiosk",
    tags=["kiosk"],
    dependencies=[Depends(kiosk_caller)],
    responses={
        401: refusal("No kiosk credential, or it is not valid (expired, replayed…)"),
        403: refusal("The credential is a node's of another kind"),
        503: refusal("This central has no fleet CA to check credentials with"),
    },
)
MAP = Path(__file__).parents[1] / "console" / "map" / "rongjiawan.geojson"
RATEABLE = frozenset({"replied", "visited", "answered", "closed"})


@router.get("/content")
def content(session: SessionDep) -> dict[str, Any]:
    """Every content item by kind, with the newest change (kiosks cache this)."""
    rows = session.exec(select(ContentItem).order_by(col(ContentItem.id))).all()
    out: dict[str, list[dict[str, Any]]] = {
        "notice": [],
        "guide": [],
        "place": [],
        "utility": [],
    }
    for r in rows:
        out.setdefault(r.kind, []).append(
            {"id": r.id, "title": r.title, "body": r.body, "extra": r.extra}
        )
    services = [
        {"code": s.code, "name": s.name, "group": s.group, "description": s.description}
        for s in session.exec(select(ServiceType).order_by(col(ServiceType.code))).all()
    ]
    newest = max((as_utc(r.updated_at).isoformat() for r in rows), default="")
    return {
        "items": out,
        "services": services,
        "map": county_map(),
        "version": f"{len(rows)}:{newest}",
    }


@lru_cache(maxsize=1)
def county_map() -> dict[str, Any]:
    """The county map the console draws, for the kiosk's place picker."""
    data: dict[str, Any] = json.loads(MAP.read_text(encoding="utf-8"))
    return data


# Unknown follow-up codes one kiosk may ask for before it waits: the code
# is a citizen's only key to their complaint's reply.
LOOKUP_POLICY = throttle.ThrottlePolicy(free=30)


@router.get(
    "/status/{code}",
    responses={429: refusal("Too many unknown codes; wait ``Retry-After`` seconds")},
)
def complaint_status(
    code: Annotated[str, PathParam(max_length=32)],
    kiosk: KioskDep,
    session: SessionDep,
    svc: ServicesDep,
) -> dict[str, Any]:
    """Where a complaint stands, by its follow-up code (unknown ones throttled)."""
    key = f"lookup:kiosk:{kiosk.device_id}"
    wait, _locked = sessions.reserve_attempt(
        session, [(key, LOOKUP_POLICY)], now=svc.clock.now()
    )
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"查询次数过多，请 {wait} 秒后再试",
            headers={"Retry-After": str(wait)},
        )
    c = session.exec(
        select(Complaint).where(Complaint.code == code.strip().upper())
    ).first()
    if c is None:
        raise NotFoundError("查询码不存在，请核对后再试")
    sessions.refund(session, key)
    answered = c.state in RATEABLE
    return {
        "code": c.code,
        "state": c.state,
        "state_label": workflow.LABELS.get(c.state, c.state),
        "received_at": as_utc(c.received_at).isoformat(),
        "reply": c.reply if answered else "",
        "can_rate": answered and c.rating is None,
        "rating": c.rating,
    }


@router.get("/slots")
def slots(
    session: SessionDep,
    svc: ServicesDep,
    service: Annotated[str, Query(max_length=32)] = "",
    days: Annotated[int, Query(ge=1, le=30)] = 7,
) -> list[dict[str, Any]]:
    """Upcoming appointment slots with places left."""
    now = svc.clock.now()
    query = select(Slot).where(
        Slot.starts_at >= now, Slot.starts_at < now + timedelta(days=days)
    )
    if service:
        query = query.where(Slot.service == service)
    return [
        {
            "id": s.id,
            "centre": s.centre,
            "service": s.service,
            "starts_at": as_utc(s.starts_at).isoformat(),
            "left": s.capacity - s.booked,
        }
        for s in session.exec(query.order_by(col(Slot.starts_at))).all()
        if s.booked < s.capacity
    ]


class BookingIn(BaseModel):
    """A booking made at a kiosk."""

    slot_id: int = Field(ge=1, le=MAX_ROW)
    name: str = Field(min_length=1, max_length=64)
    phone: str = Field(pattern=r"^[0-9+\- ]{5,20}$", max_length=20)


def _limit_kiosk(request: Request, svc: ServicesDep, kiosk: str) -> None:
    """429 once a kiosk has made :data:`BOOKINGS_PER_HOUR` this hour."""
    windows: dict[str, tuple[float, int]] = request.app.state.__dict__.setdefault(
        "kiosk_booking_windows", {}
    )
    now = svc.clock.now().timestamp()
    start, count = windows.get(kiosk, (now, 0))
    if now - start >= 3600:  # noqa: PLR2004 - one hour
        start, count = now, 0
    if count >= BOOKINGS_PER_HOUR:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"预约过于频繁，请稍后再试 (expected at most {BOOKINGS_PER_HOUR} "
            f"bookings an hour from kiosk {kiosk}, got {count + 1})",
        )
    if len(windows) >= _TRACKED and kiosk not in windows:
        for old in sorted(windows, key=lambda a: windows[a][0])[: _TRACKED // 10]:
            del windows[old]
    windows[kiosk] = (start, count + 1)


@router.post(
    "/bookings",
    status_code=status.HTTP_201_CREATED,
    responses={429: {"description": "Too many bookings from one kiosk or phone"}},
)
def book(
    body: BookingIn,
    request: Request,
    kiosk: KioskDep,
    session: SessionDep,
    svc: ServicesDep,
) -> dict[str, Any]:
    """Book a place (409 when the slot is full, 429 past the limits)."""
    _limit_kiosk(request, svc, kiosk.device_id)
    upcoming = session.exec(
        select(Booking)
        .join(Slot, col(Slot.id) == col(Booking.slot_id))
        .where(Booking.phone == body.phone, Slot.starts_at >= svc.clock.now())
    ).all()
    if len(upcoming) >= BOOKINGS_PER_PHONE:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"该号码已有{len(upcoming)}个预约 (expected at most "
            f"{BOOKINGS_PER_PHONE} upcoming bookings per phone, got one more)",
        )
    slot = session.get(Slot, body.slot_id)
    if slot is None:
        raise NotFoundError(f"no slot {body.slot_id}")
    if slot.booked >= slot.capacity:
        raise ConflictError("该时段已约满，请选择其他时段")
    slot.booked += 1
    booking = Booking(
        code=new_code(),
        slot_id=body.slot_id,
        name=body.name,
        phone=body.phone,
        created_at=svc.clock.now(),
    )
    session.add(booking)
    session.commit()
    return {
        "code": booking.code,
        "centre": slot.centre,
        "service": slot.service,
        "starts_at": as_utc(slot.starts_at).isoformat(),
    }
