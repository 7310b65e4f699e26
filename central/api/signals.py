"""Traffic signals: junctions, their flows, plans computed, pushed, rolled back.

Scoped by the permission matrix (``signals``): a junction belongs to its
cabinet's district. Timing is :mod:`central.signals`'s.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from sqlmodel import col, select

from central.api.deps import (
    RowId,
    Services,
    ServicesDep,
    SessionDep,
    check_scope,
    may,
    permit,
    refusal,
)
from central.errors import NotFoundError
from central.models import Device
from central.operators.auth import Principal
from central.signals.history import detector_day, plan_history
from central.signals.models import JunctionRow, PlanRow
from central.signals.service import SignalService

router = APIRouter(prefix="/api/v1/signals", tags=["signals"])
Traffic = Annotated[Principal, Depends(permit("signals", "write"))]
SignalsReader = Annotated[Principal, Depends(permit("signals", "read"))]


JunctionId = Annotated[str, PathParam(max_length=64)]


def _junction(
    svc: Services, session: SessionDep, p: Principal, junction_id: str, act: str
) -> None:
    """403 unless the junction's cabinet is in the caller's districts.

    A junction is named by its cabinet's device id; one without a registered
    cabinet belongs to the whole county.
    """
    cabinet = session.get(Device, junction_id)
    site = cabinet.site if cabinet is not None else "*"
    check_scope(svc, p, site=site, obj="signals", act=act)


def signals(svc: ServicesDep) -> SignalService:
    """The signal service, or 503 where this process has none."""
    if svc.signals is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no signal service")
    return svc.signals


class JunctionIn(BaseModel):
    """A junction's place and detectors (lane → [stage index, saturation veh/h])."""

    name: str = Field(default="", max_length=100)
    corridor: str = Field(default="", max_length=64)
    position_m: float = 0.0
    stages: int = Field(default=4, ge=2, le=8)
    detectors: dict[
        str,
        Annotated[
            dict[
                str,
                tuple[int, float]
                | tuple[int, float, Annotated[str, Field(max_length=32)]],
            ],
            Field(max_length=64),
        ],
    ] = Field(default_factory=dict, max_length=64)
    adaptive: bool = False
    speed_mps: float = Field(default=13.9, gt=0, le=40)


@router.put("/junctions/{junction_id}")
def put_junction(
    junction_id: JunctionId,
    body: JunctionIn,
    session: SessionDep,
    svc: ServicesDep,
    p: Traffic,
) -> dict[str, Any]:
    """Create or change a junction (audited)."""
    _junction(svc, session, p, junction_id, "write")
    row = session.get(JunctionRow, junction_id) or JunctionRow(id=junction_id)
    for key, value in body.model_dump().items():
        setattr(row, key, value)
    session.add(row)
    session.commit()
    svc.audit.append(
        actor=p.username,
        action="junction.put",
        target=junction_id,
        detail=body.model_dump(),
        now=svc.clock.now(),
    )
    return row.model_dump()


@router.get("/junctions")
def junctions(
    session: SessionDep, svc: ServicesDep, p: SignalsReader
) -> list[dict[str, Any]]:
    """Junctions in the caller's districts, their stage flows and plan in force."""
    service = signals(svc)
    out = []
    for j in session.exec(select(JunctionRow).order_by(col(JunctionRow.id))).all():
        cabinet = session.get(Device, j.id)  # the junction is its cabinet's id
        site = cabinet.site if cabinet is not None else "*"
        if not may(svc, p, site=site, obj="signals", act="read"):
            continue
        current = session.exec(
            select(PlanRow)
            .where(
                PlanRow.junction == j.id,
                col(PlanRow.state).in_(["accepted", "applied"]),
            )
            .order_by(col(PlanRow.id).desc())
        ).first()
        flows = [round(sum(q for q, _ in stage)) for stage in service.flows(session, j)]
        out.append(
            {
                **j.model_dump(),
                "lat": None if cabinet is None else cabinet.lat,
                "lon": None if cabinet is None else cabinet.lon,
                "stage_flows_vph": flows,
                "plan": None if current is None else service.view(current),
            }
        )
    return out


@router.get("/junctions/{junction_id}/plans")
def plans(
    junction_id: JunctionId,
    session: SessionDep,
    svc: ServicesDep,
    p: SignalsReader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    """A junction's plans, newest first."""
    _junction(svc, session, p, junction_id, "read")
    rows = session.exec(
        select(PlanRow)
        .where(PlanRow.junction == junction_id)
        .order_by(col(PlanRow.id).desc())
        .limit(min(limit, 500))
    ).all()
    return [SignalService.view(r) for r in rows]


@router.get("/junctions/{junction_id}/history")
def history(
    junction_id: JunctionId,
    session: SessionDep,
    svc: ServicesDep,
    p: SignalsReader,
    hours: Annotated[int, Query(ge=1, le=168)] = 24,
) -> dict[str, Any]:
    """A junction's last hours: its detectors loop by loop, and its plans.

    Each detector of the junction: presence, each loop's stage and approach
    as the junction maps them, the newest minute, hourly counts and mean
    occupancy, and the faults of the period. The plans the cabinet ran,
    oldest first (cycle and greens from when each was accepted or applied).
    """
    _junction(svc, session, p, junction_id, "read")
    row = session.get(JunctionRow, junction_id)
    if row is None:
        raise NotFoundError(f"no junction {junction_id!r}")
    since = svc.clock.now() - timedelta(hours=hours)
    detectors = []
    for device, lanes in sorted(row.detectors.items()):
        node = session.get(Device, device)
        detectors.append(
            {
                "device": device,
                "online": None if node is None else node.online,
                "loops": {
                    lane: {
                        "stage": int(spec[0]) + 1,
                        "approach": str(spec[2]) if len(spec) > 2 else "",  # noqa: PLR2004
                    }
                    for lane, spec in lanes.items()
                },
                **detector_day(session, device, since=since, hours=hours),
            }
        )
    return {
        "since": since.isoformat(),
        "hours": hours,
        "detectors": detectors,
        "plans": plan_history(session, junction_id, since=since),
    }


class ComputeIn(BaseModel):
    """How to compute a plan."""

    method: Literal["webster", "optimise"] = "optimise"


@router.post("/junctions/{junction_id}/compute", status_code=status.HTTP_201_CREATED)
def compute(
    junction_id: JunctionId,
    body: ComputeIn,
    session: SessionDep,
    svc: ServicesDep,
    p: Traffic,
) -> dict[str, Any]:
    """A proposed plan from the junction's measured flows (not pushed yet)."""
    _junction(svc, session, p, junction_id, "write")
    row = signals(svc).compute(session, junction_id, body.method, by=p.username)
    return SignalService.view(row)


@router.post("/corridors/{corridor}/compute", status_code=status.HTTP_201_CREATED)
def compute_corridor(
    corridor: Annotated[str, PathParam(max_length=64)],
    session: SessionDep,
    svc: ServicesDep,
    p: Traffic,
) -> list[dict[str, Any]]:
    """Proposed plans for a corridor: common cycle, two-way green wave.

    Every junction of the corridor must be in the caller's districts.
    """
    for j in session.exec(
        select(JunctionRow).where(JunctionRow.corridor == corridor)
    ).all():
        _junction(svc, session, p, j.id, "write")
    rows = signals(svc).compute_corridor(session, corridor, by=p.username)
    return [SignalService.view(r) for r in rows]


@router.post(
    "/plans/{plan_id}/push",
    responses={504: refusal("The cabinet did not acknowledge the plan in time")},
)
def push(
    plan_id: RowId, session: SessionDep, svc: ServicesDep, p: Traffic
) -> dict[str, Any]:
    """Send a plan to its cabinet; the answer says accepted or refused (and why)."""
    plan = session.get(PlanRow, plan_id)
    if plan is None:
        raise NotFoundError(f"no plan {plan_id}")
    _junction(svc, session, p, plan.junction, "write")
    return SignalService.view(signals(svc).push(session, plan_id, by=p.username))


@router.post("/junctions/{junction_id}/rollback")
def rollback(
    junction_id: JunctionId, session: SessionDep, svc: ServicesDep, p: Traffic
) -> dict[str, Any]:
    """Go back to the plan that ran before (pushed as a new version)."""
    _junction(svc, session, p, junction_id, "write")
    return SignalService.view(
        signals(svc).rollback(session, junction_id, by=p.username)
    )
