"""The complaints service's shell: kiosk submissions in, the loop driven by people.

Kiosks send ``complaint`` and ``rating`` events through their outboxes (so a
kiosk that was offline delivers later); the ingest worker hands new ones to
:meth:`ComplaintService.take` inside its transaction, so each is filed
exactly once, under the follow-up code the kiosk printed. Open311 clients
and the desk file through :meth:`ComplaintService.file`. Every transition is
a row in ``ComplaintStep`` and a record in the audit log. Deadlines and the
supervision levels come from :mod:`central.complaints.deadline`.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from central.complaints import workflow
from central.complaints.deadline import Calendar, Level, level
from central.complaints.models import (
    CalendarOverride,
    Complaint,
    ComplaintStep,
    Department,
    ServiceType,
)
from central.errors import ConflictError, NotFoundError
from central.messaging.outbound import Outbound, Sender
from central.models import as_utc
from edge.protocol import PayloadError
from edge.protocol.complaints import ComplaintBody, RatingBody, new_code
from edge.protocol.messages import parse_body

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    import sqlalchemy as sa

    from edge.clock import Clock

logger = logging.getLogger(__name__)

TYPES = frozenset({"complaint", "rating"})


@dataclass(frozen=True, slots=True)
class Filing:
    """What a new complaint needs, whoever files it."""

    service_code: str
    description: str
    place: str = ""
    lat: float | None = None
    lon: float | None = None
    real_name: bool = False
    name: str = ""
    phone: str = ""
    email: str = ""
    source: str = "kiosk"
    device: str = ""
    code: str = ""
    address_id: str = ""
    media_url: str = ""
    public: bool = False  # Open311 may show it (see central.complaints.georeport)


def complaint_view(
    c: Complaint, *, now: datetime, calendar: Calendar
) -> dict[str, Any]:
    """A complaint as the desk, the departments and the supervisors see it."""

    def iso(value: datetime | None) -> str | None:
        return None if value is None else as_utc(value).isoformat()

    supervision: Level = "ok"
    if c.due_at is not None and c.state not in {
        "closed",
        "rejected",
        "replied",
        "visited",
    }:
        supervision = level(
            received=as_utc(c.received_at),
            due=as_utc(c.due_at),
            now=now,
            calendar=calendar,
        )
    return {
        "id": c.id,
        "code": c.code,
        "service_code": c.service_code,
        "description": c.description,
        "place": c.place,
        "lat": c.lat,
        "lon": c.lon,
        "real_name": c.real_name,
        "name": c.name if c.real_name else "",
        "phone": c.phone if c.real_name else "",
        "state": c.state,
        "state_label": workflow.LABELS.get(c.state, c.state),
        "department": c.department,
        "source": c.source,
        "device": c.device,
        "received_at": iso(c.received_at),
        "accepted_at": iso(c.accepted_at),
        "due_at": iso(c.due_at),
        "extended": c.extended,
        "replied_at": iso(c.replied_at),
        "reply": c.reply,
        "closed_at": iso(c.closed_at),
        "rating": c.rating,
        "supervision": supervision,
    }


class ComplaintService:
    """The 12345 loop around the pure workflow and deadline rules."""

    types = TYPES

    def __init__(
        self,
        *,
        clock: Clock,
        sender: Sender | None = None,
        extension_days: int = 5,
    ) -> None:
        """Build the service over its collaborators.

        Args:
            clock: the time of filings, steps and deadlines.
            sender: audit records and console updates after a commit (the
                loop's people work in the console; no node is told); none
                sends nothing.
            extension_days: working days an extension adds.
        """
        self.clock = clock
        self.sender = sender or Sender(clock=clock)
        self.extension_days = extension_days
        self._next_tick = 0.0

    def calendar(self, session: Session) -> Calendar:
        """The working-day calendar with the stored overrides."""
        rows = session.exec(select(CalendarOverride)).all()
        return Calendar(overrides={r.day: r.workday for r in rows})

    # -- filing ---------------------------------------------------------------------
    def file(self, session: Session, filing: Filing, *, at: datetime) -> Complaint:
        """File a new complaint (待受理).

        Raises:
            NotFoundError: the request type does not exist.
            ConflictError: the follow-up code is taken.
        """
        if session.get(ServiceType, filing.service_code) is None:
            raise NotFoundError(f"no request type {filing.service_code!r}")
        code = filing.code or new_code()
        if session.exec(select(Complaint).where(Complaint.code == code)).first():
            raise ConflictError(f"follow-up code {code} is taken")
        complaint = Complaint(
            code=code,
            token=secrets.token_hex(16),
            service_code=filing.service_code,
            description=filing.description,
            place=filing.place,
            address_id=filing.address_id,
            media_url=filing.media_url,
            public=filing.public,
            lat=filing.lat,
            lon=filing.lon,
            real_name=filing.real_name,
            name=filing.name if filing.real_name else "",
            phone=filing.phone if filing.real_name else "",
            email=filing.email if filing.real_name else "",
            source=filing.source,
            device=filing.device,
            received_at=at,
            updated_at=at,
        )
        session.add(complaint)
        session.flush()
        session.add(
            ComplaintStep(
                complaint_id=int(complaint.id or 0),
                action="file",
                from_state="",
                to_state="pending",
                actor=filing.device or filing.source,
                at=at,
            )
        )
        return complaint

    # -- events from kiosks (inside the ingest transaction) -----------------------
    def take(
        self, session: Session, events: list[dict[str, Any]], now: datetime
    ) -> Callable[[], None]:
        """File complaints and record ratings; broadcast after the commit."""
        del now  # a complaint counts from when the citizen submitted it
        out = Outbound()
        for event in events:
            try:
                if event["type"] == "complaint":
                    body = parse_body(ComplaintBody, dict(event["body"]))
                    if session.exec(
                        select(Complaint).where(Complaint.code == body.code)
                    ).first():
                        continue  # the kiosk sent it twice (a retry): filed once
                    c = self.file(
                        session,
                        Filing(
                            service_code=body.service_code,
                            description=body.description,
                            place=body.place,
                            lat=body.lat,
                            lon=body.lon,
                            real_name=body.real_name,
                            name=body.name,
                            phone=body.phone,
                            device=str(event["device"]),
                            code=body.code,
                        ),
                        at=body.submitted_at,
                    )
                    out.live.append(
                        {"type": "complaint", "code": c.code, "state": c.state}
                    )
                else:
                    rating = parse_body(RatingBody, dict(event["body"]))
                    self.rate(session, rating.code, rating.score, at=rating.at)
                    out.live.append(
                        {"type": "complaint", "code": rating.code, "rated": True}
                    )
            except (PayloadError, NotFoundError, ConflictError, ValueError) as exc:
                logger.warning(
                    "Kiosk event from %s not applied: %s", event.get("device"), exc
                )
        return lambda: self.sender.deliver(out)

    def rate(
        self, session: Session, code: str, score: int, *, at: datetime
    ) -> Complaint:
        """Record the citizen's rating once the complaint has an answer.

        Raises:
            NotFoundError: no complaint with that code.
            ConflictError: not answered yet.
        """
        c = session.exec(select(Complaint).where(Complaint.code == code)).first()
        if c is None:
            raise NotFoundError(f"no complaint with code {code}")
        if c.state not in {"replied", "visited", "answered", "closed"}:
            raise ConflictError("a complaint can be rated once it has an answer")
        c.rating, c.rated_at, c.updated_at = score, at, at
        return c

    # -- people drive the loop ------------------------------------------------------
    def act(
        self,
        session: Session,
        complaint_id: int,
        action: str,
        *,
        actor: str,
        role: str,
        note: str = "",
        department: str = "",
    ) -> Complaint:
        """Take one step of the loop, timestamped and audited.

        Raises:
            NotFoundError: no such complaint or department.
            ConflictError: the step is not allowed (state, role, second
                extension, staff of another department).
        """
        c = session.get(Complaint, complaint_id)
        if c is None:
            raise NotFoundError(f"no complaint {complaint_id}")
        step = workflow.check(action, state=c.state, role=role, extended=c.extended)
        now = self.clock.now()
        if role == "department":
            dept = session.get(Department, c.department)
            if dept is None or actor not in dept.members:
                raise ConflictError(f"{actor} is not on the staff of {c.department!r}")
        before = c.state
        self._effects(session, c, action, note=note, department=department, now=now)
        c.state = step.target
        c.updated_at = now
        session.add(
            ComplaintStep(
                complaint_id=complaint_id,
                action=action,
                from_state=before,
                to_state=c.state,
                actor=actor,
                note=note[:2000],
                at=now,
            )
        )
        session.commit()
        session.refresh(c)
        self.sender.deliver(
            Outbound(
                audit=[
                    {
                        "actor": actor,
                        "action": f"complaint.{action}",
                        "target": c.code,
                        "detail": {
                            "from": before,
                            "to": c.state,
                            "department": c.department,
                        },
                    }
                ],
                live=[{"type": "complaint", "code": c.code, "state": c.state}],
            )
        )
        return c

    def _effects(
        self,
        session: Session,
        c: Complaint,
        action: str,
        *,
        note: str,
        department: str,
        now: datetime,
    ) -> None:
        """What an action changes besides the state."""
        calendar = self.calendar(session)
        service = session.get(ServiceType, c.service_code)
        if action == "accept":
            c.accepted_at = now
            limit = service.limit_days if service else 5
            c.due_at = calendar.add_workdays(as_utc(c.received_at), limit)
        elif action in {"triage", "assign"}:
            target = (
                department or c.department or (service.department if service else "")
            )
            if not target or session.get(Department, target) is None:
                raise NotFoundError(
                    f"no department {target!r} to pass the complaint to"
                )
            c.department = target
        elif action == "extend":
            c.extended = True
            base = as_utc(c.due_at) if c.due_at else now
            c.due_at = calendar.add_workdays(base, self.extension_days)
        elif action in {"reply", "answer"}:
            if not note.strip():
                raise ConflictError("an answer needs its text")
            c.reply, c.replied_at = note, now
        elif action == "close":
            c.closed_at = now
        elif action == "redo":
            c.replied_at = None

    def tick(self, engine: sa.Engine) -> None:
        """Once a minute: record 催办 and 督办升级 as they fall due."""
        if self.clock.monotonic() < self._next_tick:
            return
        self._next_tick = self.clock.monotonic() + 60.0
        with Session(engine) as session:
            self.supervise(session)

    def supervise(self, session: Session) -> list[tuple[str, str]]:
        """Record each complaint's 催办 (due) and 督办升级 (two days past) once.

        Each is a step by ``system`` naming who is told — the department, then
        its head — and an audit record. Returns (code, action) pairs recorded.
        """
        now = self.clock.now()
        calendar = self.calendar(session)
        active = (
            "accepted",
            "triaged",
            "assigned",
            "signed",
            "in_progress",
            "returned",
            "reopened",
        )
        rows = session.exec(
            select(Complaint).where(
                col(Complaint.state).in_(active), col(Complaint.due_at).is_not(None)
            )
        ).all()
        done: list[tuple[str, str]] = []
        for c in rows:
            assert c.due_at is not None  # noqa: S101 - filtered above
            found = level(
                received=as_utc(c.received_at),
                due=as_utc(c.due_at),
                now=now,
                calendar=calendar,
            )
            wanted = {"urge": ["urge"], "escalate": ["urge", "escalate"]}.get(found, [])
            taken = set(
                session.exec(
                    select(ComplaintStep.action).where(
                        ComplaintStep.complaint_id == c.id,
                        col(ComplaintStep.action).in_(("urge", "escalate")),
                    )
                ).all()
            )
            for action in (a for a in wanted if a not in taken):
                dept = session.get(Department, c.department) if c.department else None
                who = (
                    (dept.head or dept.name)
                    if dept and action == "escalate"
                    else (dept.name if dept else "受理台")
                )
                note = (
                    "督办升级，通知 " if action == "escalate" else "已到期催办，通知 "
                ) + who
                session.add(
                    ComplaintStep(
                        complaint_id=int(c.id or 0),
                        action=action,
                        from_state=c.state,
                        to_state=c.state,
                        actor="system",
                        note=note,
                        at=now,
                    )
                )
                done.append((c.code, action))
        session.commit()
        self.sender.deliver(
            Outbound(
                audit=[
                    {"actor": "system", "action": f"complaint.{action}", "target": code}
                    for code, action in done
                ],
                live=[
                    {"type": "complaint", "code": code, "supervision": action}
                    for code, action in done
                ],
            )
        )
        return done
