"""诱导: links and their travel times, incidents confirmed or dismissed.

Scoped by the permission matrix: ``guidance`` (links and travel times; the
traffic centre writes, police read) and ``guidance/incidents`` (traffic
centre and police both decide). A link belongs to its ``site``. The
estimates and detectors are :mod:`central.guidance`'s.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from sqlmodel import col, select

from central.api.deps import (
    RowId,
    ServicesDep,
    SessionDep,
    check_scope,
    may,
    permit,
    refusal,
)
from central.errors import InvalidError
from central.guidance import od, signs
from central.guidance.models import GuidanceLink, Incident, ODCount, TravelTime
from central.guidance.service import GuidanceService, incident_view
from central.models import Device, as_utc
from central.operators.auth import Principal

router = APIRouter(prefix="/api/v1/guidance", tags=["guidance"])
SLOGAN = "安全行车/文明出行"
Reader = Annotated[Principal, Depends(permit("guidance", "read"))]
Writer = Annotated[Principal, Depends(permit("guidance", "write"))]
IncidentReader = Annotated[Principal, Depends(permit("guidance/incidents", "read"))]
IncidentWriter = Annotated[Principal, Depends(permit("guidance/incidents", "write"))]
LinkId = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[\w.:-]+$")]
DeviceId = Annotated[str, Field(max_length=64)]


def guidance(svc: ServicesDep) -> GuidanceService:
    """The guidance service, or 503 where this process has none."""
    if svc.guidance is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no guidance service")
    return svc.guidance


class LoopPair(BaseModel):
    """Two detector stations along a link and the through lanes compared."""

    up: DeviceId
    down: DeviceId
    lanes: list[Annotated[int, Field(ge=1, le=16)]] = Field(min_length=1, max_length=8)


class LinkIn(BaseModel):
    """A link: its cameras at both ends and/or its loop stations."""

    name: str = Field(default="", max_length=100)
    site: str = Field(default="*", max_length=64)
    origin: DeviceId = ""
    destination: DeviceId = ""
    length_m: float = Field(default=0.0, ge=0, le=100_000)
    free_flow_s: float = Field(default=0.0, ge=0, le=36_000)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    loops: list[LoopPair] = Field(default_factory=list, max_length=32)


class Decision(BaseModel):
    """A person's word on an incident."""

    decision: Literal["confirmed", "dismissed"]
    note: str = Field(default="", max_length=500)


def _link_view(link: GuidanceLink, latest: TravelTime | None) -> dict[str, Any]:
    return {
        "id": link.id,
        "name": link.name,
        "site": link.site,
        "origin": link.origin,
        "destination": link.destination,
        "length_m": link.length_m,
        "free_flow_s": link.free_flow_s,
        "lat": link.lat,
        "lon": link.lon,
        "loops": link.loops,
        "latest": None if latest is None else _tt_view(latest),
    }


def _tt_view(row: TravelTime) -> dict[str, Any]:
    return {
        "minute": as_utc(row.minute).isoformat(),
        "seconds": round(row.seconds, 1),
        "sd": round(row.sd, 1),
        "samples": row.samples,
        "source": row.source,
        "confidence": row.confidence,
    }


def _link(session: SessionDep, link_id: str) -> GuidanceLink:
    link = session.get(GuidanceLink, link_id)
    if link is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no link {link_id!r}")
    return link


@router.get("/links")
def list_links(svc: ServicesDep, session: SessionDep, p: Reader) -> dict[str, Any]:
    """The links in the caller's districts, each with its latest travel time."""
    items = []
    for link in session.exec(select(GuidanceLink).order_by(col(GuidanceLink.id))):
        if not may(svc, p, site=link.site, obj="guidance", act="read"):
            continue
        latest = session.exec(
            select(TravelTime)
            .where(TravelTime.link == link.id)
            .order_by(col(TravelTime.minute).desc())
        ).first()
        items.append(_link_view(link, latest))
    return {"items": items}


def _check_devices(
    svc: ServicesDep, session: SessionDep, p: Principal, body: LinkIn
) -> None:
    """Each camera and loop station a link names: registered, in its district.

    A link's travel times are its devices' data: a district's operator who
    could name another district's cameras would read that district's
    traffic through a link of their own (403).
    """
    named = [body.origin, body.destination]
    named += [x for pair in body.loops for x in (pair.up, pair.down)]
    for device_id in dict.fromkeys(x for x in named if x):
        device = session.get(Device, device_id)
        if device is None:
            raise InvalidError(f"expected a registered device, got {device_id!r}")
        check_scope(svc, p, site=device.site, obj="guidance", act="write")
        if body.site not in ("*", device.site):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"expected devices of site {body.site!r} on its link, got "
                f"{device_id!r} of site {device.site!r}",
            )


@router.put(
    "/links/{link_id}",
    responses={422: refusal("A field is out of range, or the link has no detector")},
)
def put_link(
    link_id: LinkId, body: LinkIn, svc: ServicesDep, session: SessionDep, p: Writer
) -> dict[str, Any]:
    """Add or change a link (its cameras and loops); its measurements stay."""
    check_scope(svc, p, site=body.site, obj="guidance", act="write")
    if not (body.origin and body.destination) and not body.loops:
        raise InvalidError(  # 422
            "expected cameras at both ends (origin and destination) or loops, "
            "got neither"
        )
    _check_devices(svc, session, p, body)
    link = session.get(GuidanceLink, link_id)
    if link is not None:
        check_scope(svc, p, site=link.site, obj="guidance", act="write")
    else:
        link = GuidanceLink(id=link_id)
    values = body.model_dump()
    values["loops"] = [pair.model_dump() for pair in body.loops]
    for name, value in values.items():
        setattr(link, name, value)
    session.add(link)
    session.commit()
    if svc.guidance is not None:
        svc.guidance.forget()
    svc.audit.append(
        actor=p.username,
        action="guidance.link",
        target=f"guidance/{link_id}",
        detail={"origin": body.origin, "destination": body.destination},
        now=svc.clock.now(),
    )
    return _link_view(link, None)


@router.get("/links/{link_id}/travel-times")
def travel_times(
    link_id: LinkId,
    svc: ServicesDep,
    session: SessionDep,
    p: Reader,
    minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 60,
) -> dict[str, Any]:
    """The link's per-minute travel times of the last ``minutes``."""
    link = _link(session, link_id)
    check_scope(svc, p, site=link.site, obj="guidance", act="read")
    since = svc.clock.now() - timedelta(minutes=minutes)
    rows = session.exec(
        select(TravelTime)
        .where(TravelTime.link == link_id, col(TravelTime.minute) >= since)
        .order_by(col(TravelTime.minute))
    ).all()
    return {"link": link_id, "items": [_tt_view(r) for r in rows]}


@router.get("/incidents")
def list_incidents(
    svc: ServicesDep,
    session: SessionDep,
    p: IncidentReader,
    state: Annotated[
        Literal["raised", "confirmed", "dismissed", "cleared"] | None, Query()
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Incidents in the caller's districts, newest first."""
    query = select(Incident).order_by(col(Incident.id).desc()).limit(limit)
    if state is not None:
        query = query.where(Incident.state == state)
    items = []
    for row in session.exec(query).all():
        link = session.get(GuidanceLink, row.link)
        site = link.site if link is not None else "*"
        if may(svc, p, site=site, obj="guidance/incidents", act="read"):
            items.append(incident_view(row, link))
    return {"items": items}


@router.post(
    "/incidents/{incident_id}/decision",
    responses={409: refusal("The incident was decided or cleared already")},
)
def decide(
    incident_id: RowId,
    body: Decision,
    svc: ServicesDep,
    session: SessionDep,
    p: IncidentWriter,
) -> dict[str, Any]:
    """Confirm or dismiss a raised incident; its police alarm follows."""
    service = guidance(svc)
    row = session.get(Incident, incident_id)
    link = session.get(GuidanceLink, row.link) if row is not None else None
    site = link.site if link is not None else "*"
    check_scope(svc, p, site=site, obj="guidance/incidents", act="write")
    row, out = service.decide(  # NotFoundError → 404, ConflictError → 409
        session, incident_id, decision=body.decision, by=p.username, note=body.note
    )
    session.commit()
    service.sender.deliver(out)
    return incident_view(row, link)


@router.get(
    "/od",
    responses={
        200: {
            "content": {"application/xml": {}},
            "description": "The matrix as JSON, or as SUMO tazRelation XML",
        }
    },
)
def od_matrix(
    svc: ServicesDep,
    session: SessionDep,
    p: Reader,
    hour: Annotated[datetime, Query(description="the hour's start, with offset")],
    fmt: Annotated[Literal["json", "sumo"], Query(alias="format")] = "json",
    scale: Annotated[float, Query(ge=1, le=10)] = 1.0,
) -> Any:  # noqa: ANN401 - JSON or XML
    """Journeys between cameras that began in ``hour`` (read vehicles).

    ``format=sumo`` answers ``od2trips --tazrelation-files`` input, the
    interval from 0 to 3600 s, counts times ``scale`` (1 / the read rate);
    only cameras in the caller's districts are shown.
    """
    if hour.tzinfo is None:
        raise InvalidError(f"expected an hour with a UTC offset, got {hour}")
    start = od.hour_of(hour)
    rows = session.exec(
        select(ODCount)
        .where(ODCount.hour == start)
        .order_by(col(ODCount.origin), col(ODCount.destination))
    ).all()
    sites: dict[str, str] = {}

    def visible(camera: str) -> bool:
        if camera not in sites:
            device = session.get(Device, camera)
            sites[camera] = device.site if device is not None else "*"
        return may(svc, p, site=sites[camera], obj="guidance", act="read")

    shown = [r for r in rows if visible(r.origin) and visible(r.destination)]
    if fmt == "sumo":
        xml = od.to_tazrelations(
            {(r.origin, r.destination): r.trips for r in shown},
            begin_s=0,
            end_s=3600,
            interval_id=start.isoformat(),
            scale=scale,
        )
        return Response(xml, media_type="application/xml")
    return {
        "hour": start.isoformat(),
        "items": [
            {"origin": r.origin, "destination": r.destination, "trips": r.trips}
            for r in shown
        ],
    }


@router.get(
    "/links/{link_id}/message",
    responses={422: refusal("The message does not fit the sign; ``detail`` says why")},
)
def sign_message(
    link_id: LinkId,
    svc: ServicesDep,
    session: SessionDep,
    p: Reader,
    destination: Annotated[str, Query(min_length=1, max_length=16)],
    width_px: Annotated[int, Query(ge=16, le=4096)] = 192,
    height_px: Annotated[int, Query(ge=16, le=1024)] = 48,
) -> dict[str, Any]:
    """What a sign of this size before the link would show now, checked.

    An open incident on the link (raised or confirmed) wins over its travel
    time of the last five minutes (to ``destination``), which wins over the
    standing slogan. The answer is refused (422) when the winner does not
    fit the sign (its width, lines, GB 2312 font), naming what.
    """
    link = _link(session, link_id)
    check_scope(svc, p, site=link.site, obj="guidance", act="read")
    now = svc.clock.now()
    messages = [signs.slogan(SLOGAN, at=now - timedelta(days=1))]
    latest = session.exec(
        select(TravelTime)
        .where(
            TravelTime.link == link_id,
            col(TravelTime.minute) >= now - timedelta(minutes=5),
        )
        .order_by(col(TravelTime.minute).desc())
    ).first()
    if latest is not None:
        messages.append(
            signs.travel_time(
                destination,
                latest.seconds,
                free_flow_s=link.free_flow_s,
                at=as_utc(latest.minute),
            )
        )
    open_incidents = session.exec(
        select(Incident).where(
            Incident.link == link_id,
            col(Incident.state).in_(("raised", "confirmed")),
        )
    ).all()
    messages.extend(
        signs.incident_warning(link.name or link.id, row.lane, at=as_utc(row.raised_at))
        for row in open_incidents
    )
    chosen = signs.choose(messages)
    assert chosen is not None  # noqa: S101 - the slogan is always there
    sign = signs.SignSpec(width_px=width_px, height_px=height_px)
    try:
        signs.check(chosen, sign)
    except signs.SignError as exc:
        raise InvalidError(f"{chosen.kind}: {exc}") from exc
    return {
        "kind": chosen.kind,
        "priority": chosen.priority,
        "lines": [{"text": x.text, "colour": x.colour} for x in chosen.lines],
        "sign": {"columns": sign.columns, "rows": sign.rows},
    }
