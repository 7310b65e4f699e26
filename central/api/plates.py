"""Plates: the suspect list (嫌疑车牌库), reads, hits, sightings, evidence.

Every change to the list is audited; a possible hit is confirmed or
rejected by a person looking at the image; sightings answer "where and
when was this plate seen" in time order, which the console draws as the
vehicle's track across cameras.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, field_validator
from sqlmodel import col, select

from central.api.deps import MAX_ROW, RowId, ServicesDep, SessionDep, permit, plates
from central.errors import NotFoundError
from central.models import as_utc
from central.operators.auth import Principal
from central.plates.models import Hit, Sighting, Suspect, Violation
from central.plates.service import CATEGORIES, hit_view, sighting_view
from edge.protocol.plates import check_plate

router = APIRouter(prefix="/api/v1/plates", tags=["plates"])
Police = Annotated[Principal, Depends(permit("plates", "write"))]
PlatesReader = Annotated[Principal, Depends(permit("plates", "read"))]
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class SuspectIn(BaseModel):
    """A plate to watch for, its category and validity."""

    plate: str = Field(max_length=16)
    category: Literal["stolen", "wanted", "unpaid", "inspection", "other"]
    note: str = Field(default="", max_length=500)
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @field_validator("plate")
    @classmethod
    def _plate(cls, value: str) -> str:
        return check_plate(value)


def _suspect_view(s: Suspect) -> dict[str, Any]:
    return {
        "id": s.id,
        "plate": s.plate,
        "category": s.category,
        "category_name": CATEGORIES.get(s.category, s.category),
        "note": s.note,
        "valid_from": as_utc(s.valid_from).isoformat(),
        "valid_until": None
        if s.valid_until is None
        else as_utc(s.valid_until).isoformat(),
        "added_by": s.added_by,
        "added_at": as_utc(s.added_at).isoformat(),
    }


@router.get("/categories")
def categories(_p: PlatesReader) -> dict[str, str]:
    """The suspect categories and their names."""
    return CATEGORIES


@router.get("/suspects")
def list_suspects(
    session: SessionDep,
    _p: PlatesReader,
    q: str = "",
    category: str = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW)] = 0,
) -> dict[str, Any]:
    """The list, filtered by plate prefix and category, paginated."""
    query = select(Suspect)
    if q:
        query = query.where(col(Suspect.plate).startswith(q.strip().upper()))
    if category:
        query = query.where(Suspect.category == category)
    rows = session.exec(
        query.order_by(col(Suspect.id).desc()).offset(offset).limit(limit)
    ).all()
    return {"items": [_suspect_view(s) for s in rows], "offset": offset, "limit": limit}


def _add(
    session: SessionDep, svc: ServicesDep, p: Principal, body: SuspectIn
) -> Suspect:
    now = svc.clock.now()
    # One entry per plate: 湘A·12345 and 湘a12345 are the same car (the
    # plate is normalised by its validator), so a second listing while the
    # first is in force updates it instead of adding a twin.
    live = session.exec(
        select(Suspect)
        .where(Suspect.plate == body.plate)
        .order_by(col(Suspect.id).desc())
    ).all()
    for row in live:
        if row.valid_until is None or as_utc(row.valid_until) > now:
            row.category, row.note = body.category, body.note or row.note
            row.valid_until = body.valid_until
            if body.valid_from is not None:
                row.valid_from = body.valid_from
            session.add(row)
            return row
    row = Suspect(
        plate=body.plate,
        category=body.category,
        note=body.note,
        valid_from=body.valid_from or now,
        valid_until=body.valid_until,
        added_by=p.username,
        added_at=now,
    )
    session.add(row)
    return row


@router.post("/suspects", status_code=status.HTTP_201_CREATED)
def add_suspect(
    body: SuspectIn, session: SessionDep, svc: ServicesDep, p: Police
) -> dict[str, Any]:
    """Put a plate on the list (audited)."""
    row = _add(session, svc, p, body)
    session.commit()
    session.refresh(row)
    plates(svc).invalidate()
    svc.audit.append(
        actor=p.username,
        action="suspect.add",
        target=row.plate,
        detail=_suspect_view(row),
        now=svc.clock.now(),
    )
    return _suspect_view(row)


@router.delete("/suspects/{suspect_id}")
def remove_suspect(
    suspect_id: RowId, session: SessionDep, svc: ServicesDep, p: Police
) -> dict[str, Any]:
    """Take a plate off the list (audited)."""
    row = session.get(Suspect, suspect_id)
    if row is None:
        raise NotFoundError(f"no suspect {suspect_id}")
    view = _suspect_view(row)
    session.delete(row)
    session.commit()
    plates(svc).invalidate()
    svc.audit.append(
        actor=p.username,
        action="suspect.remove",
        target=view["plate"],
        detail=view,
        now=svc.clock.now(),
    )
    return view


@router.post("/suspects/import")
async def import_suspects(
    request: Request, session: SessionDep, svc: ServicesDep, p: Police
) -> dict[str, Any]:
    """Bulk import from CSV (UTF-8; ``plate,category[,note,valid_from,valid_until]``).

    Good rows are added; each bad row is reported with its line and reason.
    """
    text = (await request.body()).decode("utf-8-sig", errors="replace")
    added, errors = 0, []
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            body = SuspectIn.model_validate(
                {k: v for k, v in row.items() if k and v not in (None, "")}
            )
        except ValueError as exc:
            first = str(exc).splitlines()
            errors.append({"line": line, "error": " ".join(first[:3])[:200]})
            continue
        _add(session, svc, p, body)
        added += 1
    session.commit()
    plates(svc).invalidate()
    svc.audit.append(
        actor=p.username,
        action="suspect.import",
        target="csv",
        detail={"added": added, "refused": len(errors)},
        now=svc.clock.now(),
    )
    return {"added": added, "errors": errors}


@router.get("/reads")
def recent_reads(
    session: SessionDep,
    _p: PlatesReader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """The latest reads from every camera."""
    rows = session.exec(
        select(Sighting).order_by(col(Sighting.id).desc()).limit(limit)
    ).all()
    return [sighting_view(s) for s in rows]


@router.get("/hits")
def list_hits(
    session: SessionDep,
    _p: PlatesReader,
    state: Literal["open", "all"] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """Hits and possible hits, newest first."""
    query = select(Hit).order_by(col(Hit.id).desc()).limit(limit)
    if state == "open":
        query = query.where(Hit.state == "open")
    out = []
    for hit in session.exec(query).all():
        sighting = session.get(Sighting, hit.sighting_id)
        out.append(
            {**hit_view(hit), "sighting": sighting_view(sighting) if sighting else None}
        )
    return out


@router.post("/hits/{hit_id}/{decision}")
def decide_hit(
    hit_id: RowId,
    decision: Literal["confirm", "reject"],
    session: SessionDep,
    svc: ServicesDep,
    p: Police,
) -> dict[str, Any]:
    """Confirm a possible hit (the alarm is raised) or reject it (audited)."""
    service = plates(svc)
    hit, out = service.decide(
        session, hit_id, confirm=decision == "confirm", by=p.username
    )
    service.sender.deliver(out)
    return hit_view(hit)


@router.get("/sightings")
def sightings(
    session: SessionDep,
    _p: PlatesReader,
    plate: str,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 500,
) -> list[dict[str, Any]]:
    """Where and when a plate was seen, oldest first (its track)."""
    query = select(Sighting).where(Sighting.plate == check_plate(plate))
    if from_ is not None:
        query = query.where(Sighting.seen_at >= from_)
    if to is not None:
        query = query.where(Sighting.seen_at < to)
    rows = session.exec(query.order_by(col(Sighting.seen_at)).limit(limit)).all()
    return [sighting_view(s) for s in rows]


@router.get("/violations")
def violations(
    session: SessionDep,
    _p: PlatesReader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """Red-light crossings, newest first."""
    rows = session.exec(
        select(Violation).order_by(col(Violation.id).desc()).limit(limit)
    ).all()
    return [
        {
            "id": v.id,
            "device": v.device,
            "plate": v.plate,
            "junction": v.junction,
            "signal_group": v.signal_group,
            "red_since": as_utc(v.red_since).isoformat(),
            "crossed_at": as_utc(v.crossed_at).isoformat(),
            "evidence": v.evidence,
        }
        for v in rows
    ]


@router.get("/evidence/{sha256}")
def evidence_image(sha256: str, svc: ServicesDep, _p: PlatesReader) -> FileResponse:
    """One evidence image (JPEG) by its SHA-256."""
    if not SHA256.fullmatch(sha256):
        raise NotFoundError(f"expected a SHA-256 in hex, got {sha256[:70]!r}")
    path = plates(svc).evidence_dir / f"{sha256}.jpg"
    if not path.is_file():
        raise NotFoundError(f"no evidence image {sha256}")
    return FileResponse(path, media_type="image/jpeg")


@router.post("/purge")
def purge(session: SessionDep, svc: ServicesDep, p: Police) -> dict[str, Any]:
    """Delete now the reads that hit nothing and are past retention (audited)."""
    deleted = plates(svc).purge(session)
    svc.audit.append(
        actor=p.username,
        action="plates.purge",
        target="sightings",
        detail={"deleted": deleted, "at": datetime.now(UTC).isoformat()},
        now=svc.clock.now(),
    )
    return {"deleted": deleted}
