"""Police command: officers, alarms (SOS first), beats, messages, reports.

Report routes follow Traccar's shapes (``/reports/route``, ``/reports/stops``,
``/reports/summary`` with ``deviceId``, ``from``, ``to``) in metres and
seconds. ``/osmand`` takes positions from a stock OsmAnd / Traccar Client
phone app, so a phone can serve as a handheld; the phone sends a secret
identifier issued per handheld, never the guessable device id.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from central.api.deps import (
    MAX_ROW,
    RowId,
    Services,
    ServicesDep,
    SessionDep,
    permit,
    police,
    public,
)
from central.errors import NotFoundError
from central.models import Device, as_utc
from central.operators.auth import Principal
from central.police import phone
from central.police.geo import Located, make_area, nearest_within, project
from central.police.models import (
    Alarm,
    Beat,
    Message,
    Officer,
    OsmandKey,
    Position,
    Receipt,
)
from central.police.reports import Track, attendance, parse_shifts, stops, summary
from central.police.views import alarm_view
from edge.protocol import envelope
from edge.protocol.messages import to_body

router = APIRouter(prefix="/api/v1/police", tags=["police"])
osmand_router = APIRouter(tags=["police"])
Police = Annotated[Principal, Depends(permit("police", "write"))]
PoliceReader = Annotated[Principal, Depends(permit("police", "read"))]
logger = logging.getLogger(__name__)


@router.get("/officers")
def officers(session: SessionDep, _p: PoliceReader) -> list[dict[str, Any]]:
    """Every officer with the latest trusted fix and open alarms."""
    open_alarms: dict[str, list[str]] = {}
    for device, kind in session.exec(
        select(Alarm.device, Alarm.kind).where(
            col(Alarm.state).in_(("raised", "acknowledged", "assigned"))
        )
    ).all():
        open_alarms.setdefault(device, []).append(kind)
    heard = {
        device: (online, last_seen)
        for device, online, last_seen in session.exec(
            select(Device.id, Device.online, Device.last_seen).where(
                Device.kind == "handheld"
            )
        ).all()
    }
    phones = set(session.exec(select(OsmandKey.device)).all())
    # The accuracy of the fix that placed each officer (the same row).
    accuracy = dict(
        session.exec(
            select(Position.device, Position.accuracy_m).join(
                Officer,
                sa.and_(
                    col(Officer.device) == col(Position.device),
                    col(Officer.fix_ts) == col(Position.fix_ts),
                ),
            )
        ).all()
    )
    return [
        {
            "device": o.device,
            "name": o.name,
            "badge": o.badge,
            "unit": o.unit,
            "leader": o.leader,
            "beat_id": o.beat_id,
            "lat": o.lat,
            "lon": o.lon,
            "fix_ts": None if o.fix_ts is None else as_utc(o.fix_ts).isoformat(),
            "speed_mps": o.speed_mps,
            "accuracy_m": accuracy.get(o.device),
            "battery": o.battery,
            "online": heard.get(o.device, (False, None))[0],
            "last_seen": _iso(heard.get(o.device, (False, None))[1]),
            "phone": o.device in phones,
            "alarms": open_alarms.get(o.device, []),
        }
        for o in session.exec(select(Officer).order_by(Officer.device)).all()
    ]


class OfficerIn(BaseModel):
    """Who carries a handheld."""

    name: str = Field(default="", max_length=64)
    badge: str = Field(default="", max_length=32)
    unit: str = Field(default="", max_length=64)
    leader: bool = False
    beat_id: int | None = Field(default=None, ge=1, le=MAX_ROW)


@router.put("/officers/{device}")
def put_officer(
    device: str, body: OfficerIn, session: SessionDep, svc: ServicesDep, p: Police
) -> dict[str, Any]:
    """Assign a handheld to an officer, a unit and a beat."""
    if session.get(Device, device) is None:
        raise NotFoundError(f"no device {device!r}")
    if body.beat_id is not None and session.get(Beat, body.beat_id) is None:
        raise NotFoundError(f"no beat {body.beat_id}")
    officer = session.get(Officer, device) or Officer(device=device)
    for key, value in body.model_dump().items():
        setattr(officer, key, value)
    session.add(officer)
    session.commit()
    svc.audit.append(
        actor=p.username,
        action="officer.update",
        target=device,
        detail=body.model_dump(),
        now=svc.clock.now(),
    )
    return {"device": device, **body.model_dump()}


@router.post("/officers/{device}/osmand", status_code=status.HTTP_201_CREATED)
def issue_osmand(
    device: str, session: SessionDep, svc: ServicesDep, p: Police
) -> dict[str, str]:
    """A new secret identifier for a phone running OsmAnd / Traccar Client.

    It goes in the app's "device identifier" field and is shown only now;
    issuing again replaces it (the old one stops working at once).
    """
    if not _active_handheld(session.get(Device, device)):
        raise NotFoundError(f"no registered handheld {device!r}")
    identifier = secrets.token_urlsafe(18)
    now = svc.clock.now()
    key = OsmandKey(
        device=device,
        key_sha256=_sha256(identifier),
        issued_at=now,
        issued_by=p.username,
    )
    session.merge(key)  # replaces the handheld's earlier identifier, if any
    session.commit()
    svc.audit.append(actor=p.username, action="osmand.issue", target=device, now=now)
    return {"device": device, "identifier": identifier, "path": "/osmand"}


@router.delete("/officers/{device}/osmand", status_code=status.HTTP_204_NO_CONTENT)
def revoke_osmand(
    device: str, session: SessionDep, svc: ServicesDep, p: Police
) -> Response:
    """Stop taking positions from this handheld's phone identifier."""
    key = session.get(OsmandKey, device)
    if key is None:
        raise NotFoundError(f"handheld {device!r} has no phone identifier")
    session.delete(key)
    session.commit()
    now = svc.clock.now()
    svc.audit.append(actor=p.username, action="osmand.revoke", target=device, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/alarms")
def alarms(
    session: SessionDep,
    _p: PoliceReader,
    state: Annotated[Literal["open", "all"], Query()] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Alarms, newest first; ``open`` (default) hides the closed ones."""
    query = select(Alarm).order_by(col(Alarm.id).desc()).limit(limit)
    if state == "open":
        query = query.where(
            col(Alarm.state).in_(("raised", "acknowledged", "assigned"))
        )
    return [alarm_view(a) for a in session.exec(query).all()]


@router.get("/alarms/{alarm_id}/receipts")
def alarm_receipts(
    alarm_id: RowId, session: SessionDep, _p: PoliceReader
) -> list[dict[str, Any]]:
    """Whose handheld the alarm's alert reached, and who acknowledged it."""
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        raise NotFoundError(f"no alarm {alarm_id}")
    alert_id = (
        f"sos:{alarm.key}"[:64] if alarm.kind == "sos" else f"{alarm.kind}:{alarm.id}"
    )
    rows = session.exec(select(Receipt).where(Receipt.message_id == alert_id)).all()
    return [_receipt_view(r) for r in rows]


@router.get("/alarms/{alarm_id}/nearest")
def nearest_officers(
    alarm_id: RowId,
    session: SessionDep,
    svc: ServicesDep,
    _p: PoliceReader,
    radius_m: Annotated[float, Query(gt=0, le=50_000)] = 5000.0,
    limit: Annotated[int, Query(ge=1, le=50)] = 8,
) -> list[dict[str, Any]]:
    """The free officers nearest to an alarm, by name, with their distance.

    Free: placed by a fix newer than the police service's ``fresh_s``, not
    the alarm's own device, not already sent to an open alarm and not in an
    open SOS of their own.
    """
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        raise NotFoundError(f"no alarm {alarm_id}")
    if alarm.lat is None or alarm.lon is None:
        return []
    busy = {alarm.device}
    for device, kind, responders in session.exec(
        select(Alarm.device, Alarm.kind, Alarm.responders).where(
            col(Alarm.state).in_(("raised", "acknowledged", "assigned"))
        )
    ).all():
        busy.update(responders or [])
        if kind == "sos":
            busy.add(device)
    since = svc.clock.now() - timedelta(seconds=police(svc).rules.fresh_s)
    placed = {
        o.device: o
        for o in session.exec(
            select(Officer).where(
                col(Officer.fix_ts) >= since, col(Officer.lat).is_not(None)
            )
        ).all()
    }
    people = [
        Located(d, o.lat, o.lon)
        for d, o in placed.items()
        if o.lat is not None and o.lon is not None
    ]
    near = nearest_within(
        alarm.lat, alarm.lon, people, radius_m=radius_m, limit=limit, exclude=busy
    )
    return [
        {
            "device": n.device,
            "name": placed[n.device].name,
            "badge": placed[n.device].badge,
            "unit": placed[n.device].unit,
            "distance_m": n.distance_m,
        }
        for n in near
    ]


def _receipt_view(r: Receipt) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return None if value is None else as_utc(value).isoformat()

    return {
        "device": r.device,
        "sent_at": iso(r.sent_at),
        "received_at": iso(r.received_at),
        "acked_at": iso(r.acked_at),
    }


class AlarmAction(BaseModel):
    """What an operator does to an alarm."""

    responders: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=50
    )
    note: str = Field(default="", max_length=500)


ACTIONS = {
    "acknowledge": "acknowledged",
    "assign": "assigned",
    "resolve": "resolved",
    "false-alarm": "false_alarm",
}


@router.post("/alarms/{alarm_id}/{action}")
def act_on_alarm(
    alarm_id: RowId,
    action: Literal["acknowledge", "assign", "resolve", "false-alarm"],
    body: AlarmAction,
    session: SessionDep,
    svc: ServicesDep,
    p: Police,
) -> dict[str, Any]:
    """Acknowledge, assign responders, resolve, or close as a false alarm."""
    if action == "assign" and not body.responders:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "assign needs at least one responder"
        )
    service = police(svc)
    alarm, out = service.transition(
        session,
        alarm_id,
        to=ACTIONS[action],
        by=p.username,
        responders=body.responders,
        note=body.note,
    )
    service.deliver(out)
    return alarm_view(alarm)


class BeatIn(BaseModel):
    """A beat: a GeoJSON polygon in lon/lat, its shifts and edge buffer."""

    name: str = Field(min_length=1, max_length=64)
    unit: str = Field(default="", max_length=64)
    geometry: dict[str, Any] = Field(max_length=8)  # type, coordinates
    shifts: list[Annotated[dict[str, Any], Field(max_length=8)]] = Field(
        default_factory=list, max_length=50
    )
    buffer_m: float = Field(default=30.0, ge=0, le=500)


def _beat_view(beat: Beat) -> dict[str, Any]:
    return {
        "id": beat.id,
        "name": beat.name,
        "unit": beat.unit,
        "geometry": beat.geometry,
        "shifts": beat.shifts,
        "buffer_m": beat.buffer_m,
        "updated_at": as_utc(beat.updated_at).isoformat(),
    }


@router.get("/beats")
def list_beats(session: SessionDep, _p: PoliceReader) -> list[dict[str, Any]]:
    """Every beat."""
    return [
        _beat_view(b) for b in session.exec(select(Beat).order_by(col(Beat.id))).all()
    ]


def _save_beat(
    session: SessionDep, svc: ServicesDep, p: Principal, body: BeatIn, beat: Beat
) -> dict[str, Any]:
    make_area(body.geometry, buffer_m=body.buffer_m)  # ValueError → 422, naming it
    parse_shifts(body.shifts)
    for key, value in body.model_dump().items():
        setattr(beat, key, value)
    beat.updated_at = svc.clock.now()
    session.add(beat)
    session.commit()
    session.refresh(beat)
    svc.audit.append(
        actor=p.username,
        action="beat.save",
        target=str(beat.id),
        detail={"name": beat.name, "shifts": beat.shifts, "buffer_m": beat.buffer_m},
        now=svc.clock.now(),
    )
    return _beat_view(beat)


@router.post("/beats", status_code=status.HTTP_201_CREATED)
def create_beat(
    body: BeatIn, session: SessionDep, svc: ServicesDep, p: Police
) -> dict[str, Any]:
    """Draw a new beat."""
    return _save_beat(
        session,
        svc,
        p,
        body,
        Beat(name=body.name, geometry={}, updated_at=svc.clock.now()),
    )


@router.put("/beats/{beat_id}")
def update_beat(
    beat_id: RowId, body: BeatIn, session: SessionDep, svc: ServicesDep, p: Police
) -> dict[str, Any]:
    """Change a beat's polygon, shifts or buffer."""
    beat = session.get(Beat, beat_id)
    if beat is None:
        raise NotFoundError(f"no beat {beat_id}")
    return _save_beat(session, svc, p, body, beat)


class MessageIn(BaseModel):
    """A message to one officer, a unit or all."""

    text: str = Field(min_length=1, max_length=500)
    audience: Literal["one", "group", "all"]
    target: str = Field(default="", max_length=64)
    priority: Literal["normal", "urgent"] = "normal"


@router.post("/messages", status_code=status.HTTP_201_CREATED)
def send_message(
    body: MessageIn, session: SessionDep, svc: ServicesDep, p: Police
) -> dict[str, Any]:
    """Send a message; each recipient's receipt and acknowledgement follow."""
    service = police(svc)
    message, out = service.send_message(session, sender=p.username, **body.model_dump())
    service.deliver(out)
    return _message_view(session, message)


def _message_view(session: SessionDep, message: Message) -> dict[str, Any]:
    receipts = session.exec(
        select(Receipt).where(Receipt.message_id == message.id)
    ).all()
    return {
        "id": message.id,
        "text": message.text,
        "sender": message.sender,
        "audience": message.audience,
        "target": message.target,
        "priority": message.priority,
        "created_at": as_utc(message.created_at).isoformat(),
        "receipts": [_receipt_view(r) for r in receipts],
    }


@router.get("/messages")
def list_messages(
    session: SessionDep,
    _p: PoliceReader,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[dict[str, Any]]:
    """Recent messages with per-recipient receipts."""
    rows = session.exec(
        select(Message).order_by(col(Message.created_at).desc()).limit(limit)
    ).all()
    return [_message_view(session, m) for m in rows]


def _track(
    session: SessionDep, device: str, start: datetime, end: datetime
) -> list[Track]:
    rows = session.exec(
        select(Position)
        .where(
            Position.device == device, Position.fix_ts >= start, Position.fix_ts < end
        )
        .order_by(col(Position.fix_ts))
    ).all()
    out = []
    for r in rows:
        x, y = project(r.lat, r.lon)
        out.append(
            Track(
                at=as_utc(r.fix_ts),
                lat=r.lat,
                lon=r.lon,
                x=x,
                y=y,
                speed_mps=r.speed_mps,
            )
        )
    return out


Span = Annotated[datetime, Query()]


@router.get("/reports/route")
def report_route(
    session: SessionDep,
    _p: PoliceReader,
    deviceId: str,
    from_: Annotated[datetime, Query(alias="from")],
    to: Span,
) -> list[dict[str, Any]]:
    """Every stored fix in the range, oldest first (playback uses this)."""
    return [
        {
            "deviceId": deviceId,
            "fixTime": t.at.isoformat(),
            "latitude": t.lat,
            "longitude": t.lon,
            "speed": t.speed_mps,
        }
        for t in _track(session, deviceId, from_, to)
    ]


@router.get("/reports/stops")
def report_stops(
    session: SessionDep,
    _p: PoliceReader,
    deviceId: str,
    from_: Annotated[datetime, Query(alias="from")],
    to: Span,
    min_s: Annotated[float, Query(ge=0)] = 300.0,
) -> list[dict[str, Any]]:
    """Places the officer stayed (within 50 m) for at least ``min_s``."""
    return [
        {"deviceId": deviceId, **s}
        for s in stops(_track(session, deviceId, from_, to), min_s=min_s)
    ]


@router.get("/reports/summary")
def report_summary(
    session: SessionDep,
    _p: PoliceReader,
    deviceId: str,
    from_: Annotated[datetime, Query(alias="from")],
    to: Span,
) -> dict[str, Any]:
    """Distance, speeds and span of the officer's track."""
    return {"deviceId": deviceId, **summary(_track(session, deviceId, from_, to))}


@router.get("/reports/attendance")
def report_attendance(
    session: SessionDep,
    svc: ServicesDep,
    _p: PoliceReader,
    beatId: Annotated[int, Query(ge=1, le=MAX_ROW)],
    day: date,
) -> list[dict[str, Any]]:
    """Per officer of a beat: first and last fix inside it during each shift."""
    beat = session.get(Beat, beatId)
    if beat is None:
        raise NotFoundError(f"no beat {beatId}")
    area = make_area(beat.geometry, buffer_m=0)
    tz = police(svc).tz
    local = datetime(day.year, day.month, day.day, tzinfo=tz)
    rows = []
    for officer in session.exec(select(Officer).where(Officer.beat_id == beatId)).all():
        for shift in parse_shifts(beat.shifts):
            window = shift.window(local)
            if window is None:
                continue
            fixes = _track(
                session,
                officer.device,
                window[0].astimezone(UTC),
                window[1].astimezone(UTC),
            )
            marks = [(f.at, area.strictly_inside(f.lat, f.lon)) for f in fixes]
            rows.append(
                {
                    "deviceId": officer.device,
                    "name": officer.name,
                    **attendance(
                        marks, (window[0].astimezone(UTC), window[1].astimezone(UTC))
                    ),
                }
            )
    return rows


_OSMAND_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A field cannot be read, or an unknown identifier"},
    413: {"description": f"A body over {phone.MAX_BODY_BYTES} bytes"},
}


_PHONE = [
    Depends(public("phones: the identifier issued for a handheld is the credential"))
]


@osmand_router.get("/osmand", responses=_OSMAND_ANSWERS, dependencies=_PHONE)
@osmand_router.post("/osmand", responses=_OSMAND_ANSWERS, dependencies=_PHONE)
async def osmand(request: Request, svc: ServicesDep, session: SessionDep) -> Response:
    """Positions from OsmAnd / Traccar Client phones, read as Traccar reads them.

    Query string, form body or Traccar Client 9's JSON, whatever the content
    type (:mod:`central.police.phone`). The identifier (``id``, ``deviceid``
    or ``device_id``) is the one issued for a registered handheld (only its
    hash is stored, so a guessed device id is refused). Answers as Traccar
    does: 200 with an empty body once stored, 400 for a report that cannot be
    read or an unknown identifier (naming the field), 413 for a body over
    :data:`central.police.phone.MAX_BODY_BYTES`.
    """
    body = await _capped_body(request, svc)
    try:
        reports = phone.read_request(
            query=request.url.query,
            body=body,
            content_type=request.headers.get("content-type", ""),
        )
    except phone.PhoneReportError as exc:
        svc.metrics.phone_reports.labels("refused").inc()
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
    await run_in_threadpool(_take_reports, session, svc, reports)
    return Response(status_code=status.HTTP_200_OK)


async def _capped_body(request: Request, svc: Services) -> bytes:
    """The request body, refused (413) past the cap before it is all read."""
    cap = phone.MAX_BODY_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        svc.metrics.phone_reports.labels("refused").inc()
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"body: expected at most {cap} bytes, got {declared}",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            svc.metrics.phone_reports.labels("refused").inc()
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                f"body: expected at most {cap} bytes, got more",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _take_reports(
    session: Session, svc: Services, reports: list[phone.PhoneReport]
) -> None:
    """Hand a phone's reports to the event sink, as the ingest hands a batch.

    This is the phone's protocol adapter: each trusted fix becomes the
    ``position`` envelope a handheld sends (and an ``alarm=sos`` the ``sos``
    envelope); a report without a trusted fix becomes a ``phone_report``
    envelope (the officer stays where the last trusted fix put them, the
    battery is kept). Storing them and the police service's effects are the
    sink's (:class:`central.ingest.sink.EventSink`), in this transaction.
    The device is marked heard from, never online: presence is the broker's
    word, and a phone has none.
    """
    device = _phone_device(session, reports[0].identifier)
    if device is None or any(r.identifier != reports[0].identifier for r in reports):
        svc.metrics.phone_reports.labels("unknown_id").inc()
        # The identifier is a secret: never echoed, and the same answer
        # whether it was never issued, replaced, or its handheld retired.
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "id: expected an identifier issued with "
            "POST /api/v1/police/officers/{device}/osmand, got an unknown one",
        )
    service = police(svc)
    now = svc.clock.now()
    rules = service.rules.phone
    envelopes: list[envelope.Envelope] = []
    for report in reports:
        try:
            verdict = phone.judge(report, now=now, rules=rules)
        except phone.PhoneReportError as exc:
            svc.metrics.phone_reports.labels("refused").inc()
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
        if verdict.ahead:
            svc.metrics.phone_reports.labels("ts_future").inc()
            _say_ahead(device.id, report.at)
        svc.metrics.phone_reports.labels(verdict.reason or "position").inc()
        if verdict.position is not None:
            body = to_body(verdict.position)
            envelopes.append(envelope.make(device.id, "position", body, now=now))
        else:
            body = _report_body(report, verdict)
            envelopes.append(envelope.make(device.id, "phone_report", body, now=now))
        if report.alarm == "sos":
            body = _sos_body(
                session, device.id, verdict, secret=svc.settings.jwt_secret
            )
            envelopes.append(envelope.make(device.id, "sos", body, now=now))
    stored = svc.sink().accept(session, envelopes, now)
    device.last_seen = now
    session.commit()
    stored.deliver()


_AHEAD_SAID: dict[str, float] = {}


def _say_ahead(device: str, at: datetime | None) -> None:
    """Warn about a phone's clock at most once a minute per device."""
    now = time.monotonic()
    if now < _AHEAD_SAID.get(device, 0.0):
        return
    if len(_AHEAD_SAID) > 10_000:  # noqa: PLR2004 - bounded, whatever the fleet
        _AHEAD_SAID.clear()
    _AHEAD_SAID[device] = now + 60.0
    logger.warning(
        "Phone %s: report stamped %s, ahead of the clock (local time sent as "
        "UTC?); stored at its receipt time",
        device,
        at,
    )


def _phone_device(session: Session, identifier: str) -> Device | None:
    key = session.exec(
        select(OsmandKey).where(OsmandKey.key_sha256 == _sha256(identifier))
    ).first()
    device = None if key is None else session.get(Device, key.device)
    return device if _active_handheld(device) else None


def _report_body(report: phone.PhoneReport, verdict: phone.Verdict) -> dict[str, Any]:
    fix = report.fix
    return {
        "reason": verdict.reason,
        "at": verdict.at.isoformat(),
        "lat": None if fix is None else fix.lat,
        "lon": None if fix is None else fix.lon,
        "accuracy_m": None if fix is None else fix.accuracy_m,
        "battery": report.battery,
        "charging": report.charging,
        "alarm": report.alarm,
        "mock": report.mock,
        "cells": report.cells,
        "wifi": report.wifi,
    }


def _sos_body(
    session: Session, device: str, verdict: phone.Verdict, *, secret: str
) -> dict[str, Any]:
    """An SOS from a phone: at its fix, else where its last trusted fix was."""
    lat: float | None = None
    lon: float | None = None
    if verdict.position is not None:
        lat, lon = verdict.position.lat, verdict.position.lon
    elif (officer := session.get(Officer, device)) is not None:
        lat, lon = officer.lat, officer.lon
    # One alarm per phone and minute: the app repeats alarm=sos on each report.
    # Keyed with central's secret, so no one can guess (and pre-empt) the id.
    minute = f"{device}:{int(verdict.at.timestamp()) // 60}".encode()
    tag = hmac.new(secret.encode(), minute, hashlib.sha256).hexdigest()[:24]
    sos_id = f"osmand-{device}-{tag}"
    return {
        "sos_id": sos_id[:64],
        "phase": "raised",
        "pressed_at": verdict.at.isoformat(),
        "lat": lat,
        "lon": lon,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def _active_handheld(device: Device | None) -> bool:
    return (
        device is not None and device.kind == "handheld" and device.retired_at is None
    )


def _sha256(identifier: str) -> str:
    return hashlib.sha256(identifier.encode()).hexdigest()
