"""The complaint desk, departments and supervisors; kiosk content and calendars.

Desk staff (role ``complaints``) accept, triage, pass to a department,
answer directly, call back and close; department staff (role
``department``, members of a department) sign, return, work, extend once
and reply; supervisors see the overdue board and the statistics. Every
step is audited by the service.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlmodel import col, select

from central.api.deps import (
    MAX_ROW,
    RowId,
    ServicesDep,
    SessionDep,
    complaints,
    may,
    permit,
)
from central.complaints import stats as stats_mod
from central.complaints import workflow
from central.complaints.models import (
    CalendarOverride,
    Complaint,
    ComplaintStep,
    ContentItem,
    Department,
    ServiceType,
)
from central.complaints.service import Filing, complaint_view
from central.errors import NotFoundError
from central.models import as_utc
from central.operators.auth import Principal

router = APIRouter(prefix="/api/v1/complaints", tags=["complaints"])
content_router = APIRouter(prefix="/api/v1/kiosk-content", tags=["kiosk"])
Staff = Annotated[Principal, Depends(permit("complaints", "write"))]
StaffReader = Annotated[Principal, Depends(permit("complaints", "read"))]
Desk = Annotated[Principal, Depends(permit("complaints/desk", "write"))]
DeskReader = Annotated[Principal, Depends(permit("complaints/desk", "read"))]
Editor = Annotated[Principal, Depends(permit("kiosk-content", "write"))]
ContentReader = Annotated[Principal, Depends(permit("kiosk-content", "read"))]


def _departments_of(session: SessionDep, username: str) -> list[str]:
    rows = session.exec(select(Department)).all()
    return [d.code for d in rows if username in d.members]


PERSONAL = ("name", "phone", "code")


def _visible(
    session: SessionDep, svc: ServicesDep, p: Principal, complaint_id: int
) -> Complaint:
    """The complaint, if the caller may see it at all (else 404, as if absent).

    Department staff see only the complaints passed to their departments.
    """
    c = session.get(Complaint, complaint_id)
    if c is None or (
        not may(svc, p, site="*", obj="complaints/desk", act="read")
        and c.department not in _departments_of(session, p.username)
    ):
        raise NotFoundError(f"no complaint {complaint_id}")
    return c


def _redact(svc: ServicesDep, p: Principal, view: dict[str, Any]) -> dict[str, Any]:
    """Leave out the complainant's name, phone and 查询码 unless the role may read them.

    A department answers from the text and the place; the desk calls back.
    """
    if may(svc, p, site="*", obj="complaints/personal", act="read"):
        return view
    return {**view, **dict.fromkeys(PERSONAL, "")}


@router.get("")
def list_complaints(
    session: SessionDep,
    svc: ServicesDep,
    p: StaffReader,
    state: str = "",
    department: str = "",
    overdue: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW)] = 0,
) -> dict[str, Any]:
    """Complaints, newest first; department staff see their departments' only."""
    query = select(Complaint)
    if state:
        query = query.where(col(Complaint.state).in_(state.split(",")))
    if p.role == "department":
        query = query.where(
            col(Complaint.department).in_(_departments_of(session, p.username))
        )
    elif department:
        query = query.where(Complaint.department == department)
    rows = session.exec(
        query.order_by(col(Complaint.id).desc()).offset(offset).limit(limit)
    ).all()
    now = svc.clock.now()
    calendar = complaints(svc).calendar(session)
    items = [
        _redact(svc, p, complaint_view(c, now=now, calendar=calendar)) for c in rows
    ]
    if overdue:
        items = [i for i in items if i["supervision"] != "ok"]
    return {"items": items, "offset": offset, "limit": limit}


class FileIn(BaseModel):
    """A complaint the desk takes by phone or in person."""

    service_code: str = Field(max_length=32)
    description: str = Field(min_length=1, max_length=2000)
    place: str = Field(default="", max_length=200)
    real_name: bool = False
    name: str = Field(default="", max_length=64)
    phone: str = Field(default="", max_length=32)


@router.post("", status_code=status.HTTP_201_CREATED)
def file_complaint(
    body: FileIn, session: SessionDep, svc: ServicesDep, p: Desk
) -> dict[str, Any]:
    """File a complaint at the desk (source ``desk``)."""
    service = complaints(svc)
    c = service.file(
        session,
        Filing(**body.model_dump(), source="desk", device=p.username),
        at=svc.clock.now(),
    )
    session.commit()
    session.refresh(c)
    return complaint_view(c, now=svc.clock.now(), calendar=service.calendar(session))


@router.get("/{complaint_id}")
def get_complaint(
    complaint_id: RowId, session: SessionDep, svc: ServicesDep, p: StaffReader
) -> dict[str, Any]:
    """One complaint and every step it took (personal data only for the desk)."""
    c = _visible(session, svc, p, complaint_id)
    steps = session.exec(
        select(ComplaintStep)
        .where(ComplaintStep.complaint_id == complaint_id)
        .order_by(col(ComplaintStep.id))
    ).all()
    view = _redact(
        svc,
        p,
        complaint_view(
            c, now=svc.clock.now(), calendar=complaints(svc).calendar(session)
        ),
    )
    view["steps"] = [
        {
            "action": s.action,
            "action_label": _action_label(s.action),
            "from": s.from_state,
            "to": s.to_state,
            "to_label": workflow.LABELS.get(s.to_state, s.to_state),
            "actor": s.actor,
            "note": s.note,
            "at": as_utc(s.at).isoformat(),
        }
        for s in steps
    ]
    return view


def _action_label(action: str) -> str:
    """The Chinese name of a step (filing and rating are not workflow actions)."""
    step = workflow.ACTIONS.get(action)
    if step is not None:
        return step.label
    return STEP_LABELS.get(action, action)


STEP_LABELS = {"file": "登记", "urge": "催办", "escalate": "督办升级"}


class ActIn(BaseModel):
    """An action's details: the department passed to, the answer, a note."""

    note: str = Field(default="", max_length=2000)
    department: str = Field(default="", max_length=32)


@router.post("/{complaint_id}/{action}")
def act(
    complaint_id: RowId,
    action: str,
    body: ActIn,
    session: SessionDep,
    svc: ServicesDep,
    p: Staff,
) -> dict[str, Any]:
    """Take one step of the 12345 loop (409 names why a step is not allowed)."""
    _visible(session, svc, p, complaint_id)
    service = complaints(svc)
    role = "admin" if p.role == "admin" else p.role
    c = service.act(
        session,
        complaint_id,
        action,
        actor=p.username,
        role=role,
        note=body.note,
        department=body.department,
    )
    return _redact(
        svc,
        p,
        complaint_view(c, now=svc.clock.now(), calendar=service.calendar(session)),
    )


@router.get(
    "/reports/stats",
    responses={
        200: {
            "description": "JSON rows, or the table as CSV or XLSX (``fmt``)",
            "content": {
                "application/json": {},
                "text/csv": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
            },
        }
    },
)
def statistics(
    session: SessionDep,
    svc: ServicesDep,
    _p: Staff,
    by: Literal["department", "category", "month"] = "department",
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    fmt: Literal["json", "csv", "xlsx"] = "json",
) -> Any:  # noqa: ANN401 - JSON rows or a file
    """响应率, 解决率, 满意率 by department, category or month; CSV/XLSX export."""
    query = select(Complaint)
    if from_ is not None:
        query = query.where(Complaint.received_at >= from_)
    if to is not None:
        query = query.where(Complaint.received_at < to)
    facts = [
        stats_mod.Fact(
            department=c.department,
            category=c.service_code,
            received_at=as_utc(c.received_at),
            accepted_at=None if c.accepted_at is None else as_utc(c.accepted_at),
            closed=c.state == "closed",
            rating=c.rating,
        )
        for c in session.exec(query).all()
    ]
    rows = stats_mod.table(facts, by=by, calendar=complaints(svc).calendar(session))
    names: dict[str, str] = {}
    if by == "department":
        names = {d.code: d.name for d in session.exec(select(Department)).all()}
    elif by == "category":
        names = {t.code: t.name for t in session.exec(select(ServiceType)).all()}
    if fmt == "csv":
        return Response(
            stats_mod.to_csv(rows, by=by, names=names),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="stats-{by}.csv"'},
        )
    if fmt == "xlsx":
        return Response(
            stats_mod.to_xlsx(rows, by=by, names=names),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="stats-{by}.xlsx"'},
        )
    return rows


@router.get("/setup/departments")
def list_departments(session: SessionDep, _p: StaffReader) -> list[dict[str, str]]:
    """Every department by code and name, for the console's pickers."""
    rows = session.exec(select(Department).order_by(col(Department.code))).all()
    return [{"code": d.code, "name": d.name} for d in rows]


@router.get("/setup/services")
def list_service_types(session: SessionDep, _p: StaffReader) -> list[dict[str, Any]]:
    """Every request type with its Chinese name and default department."""
    rows = session.exec(select(ServiceType).order_by(col(ServiceType.code))).all()
    return [
        {
            "code": t.code,
            "name": t.name,
            "group": t.group,
            "department": t.department,
            "limit_days": t.limit_days,
        }
        for t in rows
    ]


class DepartmentIn(BaseModel):
    """A department, its head and its staff."""

    name: str = Field(min_length=1, max_length=64)
    head: str = Field(default="", max_length=64)
    members: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=200
    )


@router.put("/setup/departments/{code}")
def put_department(
    code: str, body: DepartmentIn, session: SessionDep, svc: ServicesDep, p: Desk
) -> dict[str, Any]:
    """Create or change a department (audited)."""
    dept = session.get(Department, code) or Department(code=code, name=body.name)
    dept.name, dept.head, dept.members = body.name, body.head, body.members
    session.add(dept)
    session.commit()
    svc.audit.append(
        actor=p.username,
        action="department.put",
        target=code,
        detail=body.model_dump(),
        now=svc.clock.now(),
    )
    return {"code": code, **body.model_dump()}


class ServiceTypeIn(BaseModel):
    """A request type (Open311 service) and its time limit."""

    name: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=500)
    group: str = Field(default="投诉", max_length=16)
    department: str = Field(default="", max_length=32)
    limit_days: int = Field(default=5, ge=1, le=60)


@router.put("/setup/services/{code}")
def put_service_type(
    code: str, body: ServiceTypeIn, session: SessionDep, svc: ServicesDep, p: Desk
) -> dict[str, Any]:
    """Create or change a request type (audited)."""
    row = session.get(ServiceType, code) or ServiceType(code=code, name=body.name)
    for key, value in body.model_dump().items():
        setattr(row, key, value)
    session.add(row)
    session.commit()
    svc.audit.append(
        actor=p.username,
        action="service_type.put",
        target=code,
        detail=body.model_dump(),
        now=svc.clock.now(),
    )
    return {"code": code, **body.model_dump()}


class OverrideIn(BaseModel):
    """A day that is, or is not, a working day."""

    workday: bool
    note: str = Field(default="", max_length=100)


@router.put("/setup/calendar/{day}")
def put_override(
    day: date, body: OverrideIn, session: SessionDep, svc: ServicesDep, p: Desk
) -> dict[str, Any]:
    """Override the working-day calendar for one day (audited)."""
    row = session.get(CalendarOverride, day) or CalendarOverride(
        day=day, workday=body.workday
    )
    row.workday, row.note = body.workday, body.note
    session.add(row)
    session.commit()
    svc.audit.append(
        actor=p.username,
        action="calendar.put",
        target=day.isoformat(),
        detail=body.model_dump(),
        now=svc.clock.now(),
    )
    return {"day": day.isoformat(), **body.model_dump()}


class ContentIn(BaseModel):
    """Kiosk content: a notice, a process guide, a place or a utility item."""

    kind: Literal["notice", "guide", "place", "utility"]
    title: str = Field(min_length=1, max_length=120)
    body: str = Field(default="", max_length=5000)
    extra: dict[str, Any] = Field(default_factory=dict, max_length=32)


def _content_view(c: ContentItem) -> dict[str, Any]:
    return {
        "id": c.id,
        "kind": c.kind,
        "title": c.title,
        "body": c.body,
        "extra": c.extra,
        "updated_at": as_utc(c.updated_at).isoformat(),
    }


@content_router.get("")
def list_content(session: SessionDep, _p: ContentReader) -> list[dict[str, Any]]:
    """All kiosk content, for the editor."""
    return [
        _content_view(c)
        for c in session.exec(select(ContentItem).order_by(col(ContentItem.id))).all()
    ]


@content_router.post("", status_code=status.HTTP_201_CREATED)
def add_content(
    body: ContentIn, session: SessionDep, svc: ServicesDep, p: Editor
) -> dict[str, Any]:
    """Publish an item to every kiosk (audited)."""
    row = ContentItem(**body.model_dump(), updated_at=svc.clock.now())
    session.add(row)
    session.commit()
    session.refresh(row)
    svc.audit.append(
        actor=p.username,
        action="content.add",
        target=row.title,
        detail={"kind": row.kind},
        now=svc.clock.now(),
    )
    return _content_view(row)


@content_router.delete("/{item_id}")
def remove_content(
    item_id: RowId, session: SessionDep, svc: ServicesDep, p: Editor
) -> dict[str, Any]:
    """Withdraw an item (audited)."""
    row = session.get(ContentItem, item_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no content item {item_id}")
    view = _content_view(row)
    session.delete(row)
    session.commit()
    svc.audit.append(
        actor=p.username,
        action="content.remove",
        target=view["title"],
        detail={"kind": view["kind"]},
        now=svc.clock.now(),
    )
    return view
