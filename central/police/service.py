"""The police service's shell: handheld events in, alarms and alerts out.

The ingest worker hands it the *new* events of its types inside the batch's
transaction (:meth:`PoliceService.take`), so an SOS, a fix or a receipt takes
effect exactly once, with the event; what must go out — alerts to
handhelds, answers to the officer, live updates for the console, audit
records — is returned as an :class:`Outbound` and sent only after the
commit by the :class:`~central.messaging.outbound.Sender` it is given.
:meth:`PoliceService.tick` (run by the timer worker) repeats and escalates
unacknowledged SOS alarms and advances beat timers of silent handhelds.
Operators' actions come through the API. The decisions themselves live in
the pure modules beside this one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import uuid_utils
from sqlmodel import Session, select

from central.errors import InvalidError
from central.messaging.outbound import Outbound, Sender
from central.models import Device, as_utc
from central.operators.access import Access, ForbiddenError, check_lookup
from central.operators.auth import Principal
from central.police import beat as beats
from central.police.alarms import AlarmDesk
from central.police.geo import Area, make_area, project
from central.police.models import Alarm, Beat, Message, Officer, Position, Receipt
from central.police.reports import on_duty, parse_shifts
from central.police.rules import PoliceRules
from central.police.views import alarm_view
from edge.protocol import PayloadError
from edge.protocol.messages import parse_body, to_body
from edge.protocol.police import (
    DispatchAckBody,
    DispatchArgs,
    LookupBody,
    LookupResultArgs,
    PositionBody,
    SosBody,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from edge.clock import Clock

logger = logging.getLogger(__name__)

# ``phone_report``: a phone's report without a trusted fix (the /osmand adapter).
TYPES = frozenset({"position", "sos", "dispatch_ack", "lookup", "phone_report"})


class PoliceService:
    """SOS, beats, dispatch and look-ups around the pure cores.

    Its collaborators are arguments: the clock and the :class:`Sender` it
    sends through; it builds its :class:`AlarmDesk` over the clock and rules.
    """

    types = TYPES

    def __init__(
        self,
        *,
        clock: Clock,
        sender: Sender | None = None,
        access: Access | None = None,
        rules: PoliceRules | None = None,
    ) -> None:
        """Build the service over its collaborators.

        Args:
            clock: the time of alarms, beats and repeats.
            sender: what a commit sends (alerts, console updates, audit);
                none sends nothing, for callers that read only the database.
            access: who may see and look up what.
            rules: repeats, escalation, beats and the site's time zone.
        """
        self.clock = clock
        self.sender = sender or Sender(clock=clock)
        self.access = access or Access()
        self.rules = rules or PoliceRules()
        self.alarms = AlarmDesk(clock=clock, rules=self.rules)
        self.tz = ZoneInfo(self.rules.tz)
        self._areas: dict[int, tuple[datetime, Area]] = {}
        self._next_beat_tick = 0.0

    def deliver(self, out: Outbound) -> None:
        """Send what a committed transaction collected (the sender's job)."""
        self.sender.deliver(out)

    def transition(
        self,
        session: Session,
        alarm_id: int,
        *,
        to: str,
        by: str,
        responders: list[str] | None = None,
        note: str = "",
    ) -> tuple[Alarm, Outbound]:
        """Move an alarm on (:meth:`AlarmDesk.transition`)."""
        return self.alarms.transition(
            session, alarm_id, to=to, by=by, responders=responders, note=note
        )

    # -- events from handhelds (inside the ingest transaction) -------------------
    def take(
        self, session: Session, events: list[dict[str, Any]], now: datetime
    ) -> Callable[[], None]:
        """Apply new events of :data:`TYPES`; return what to send after commit."""
        out = self.apply(session, events, now)
        return lambda: self.deliver(out)

    def apply(
        self, session: Session, events: list[dict[str, Any]], now: datetime
    ) -> Outbound:
        """Apply events inside the caller's transaction; return what to send.

        The batch's positions go first and together (:meth:`record_positions`:
        a few statements for the whole batch, not a few per fix), so that an
        SOS or a look-up in the same batch sees where its officer is now.
        """
        out = Outbound()
        fixes: list[tuple[str, PositionBody]] = []
        rest: list[dict[str, Any]] = []
        for event in events:
            if event["type"] != "position":
                rest.append(event)
                continue
            try:
                fixes.append(
                    (
                        str(event["device"]),
                        parse_body(PositionBody, dict(event["body"])),
                    )
                )
            except (PayloadError, ValueError) as exc:
                _not_applied(event, exc)
        if fixes:
            out.extend(self.record_positions(session, fixes))
        for event in rest:
            try:
                out.extend(self._take_one(session, event, now))
            except (PayloadError, ValueError) as exc:
                _not_applied(event, exc)
        return out

    def _take_one(
        self, session: Session, event: dict[str, Any], now: datetime
    ) -> Outbound:
        device, body = str(event["device"]), dict(event["body"])
        kind = event["type"]
        if kind == "position":
            return self.record_position(session, device, parse_body(PositionBody, body))
        if kind == "sos":
            return self.alarms.on_sos(session, device, parse_body(SosBody, body), now)
        if kind == "phone_report":
            battery = body.get("battery")
            return self.record_heard(
                session,
                device,
                battery=float(battery) if isinstance(battery, (int, float)) else None,
                at=now,
            )
        if kind == "dispatch_ack":
            return self._on_receipt(session, device, parse_body(DispatchAckBody, body))
        return self._on_lookup(session, device, parse_body(LookupBody, body))

    def record_position(
        self, session: Session, device: str, fix: PositionBody
    ) -> Outbound:
        """Store a fix, move the officer, run the beat watch."""
        return self.record_positions(session, [(device, fix)])

    def record_positions(
        self, session: Session, fixes: list[tuple[str, PositionBody]]
    ) -> Outbound:
        """Store a batch of fixes, move their officers, run their beat watches.

        One INSERT for every fix, one SELECT for every officer (absent ones
        added in one more); the officers' rows are written back as one
        UPDATE per shape at the commit. Each officer's fixes are taken in
        the order they were made, so the newest places them.
        """
        out = Outbound()
        table: sa.Table = Position.__table__  # type: ignore[attr-defined]
        session.execute(
            sa.insert(table),
            [
                {
                    "device": device,
                    "fix_ts": fix.fix_ts,
                    "lat": fix.lat,
                    "lon": fix.lon,
                    "speed_mps": fix.speed_mps,
                    "course": fix.course,
                    "hdop": fix.hdop,
                    "accuracy_m": fix.accuracy_m,
                    "source": fix.source,
                    "sos": fix.sos,
                }
                for device, fix in fixes
            ],
        )
        officers = self.alarms.officers(session, (device for device, _ in fixes))
        # Not a flush of the officers moved so far before each beat's look-up:
        # they are written together at the commit (an alarm flushes itself).
        with session.no_autoflush:
            for device, fix in sorted(fixes, key=lambda f: (f[0], f[1].fix_ts)):
                out.extend(self._move(session, officers[device], fix))
        return out

    def _move(self, session: Session, officer: Officer, fix: PositionBody) -> Outbound:
        """Place the officer at a fix that is newer than theirs; watch the beat."""
        out = Outbound()
        device = officer.device
        if officer.fix_ts is not None and as_utc(officer.fix_ts) >= fix.fix_ts:
            return out  # an old fix from a backlog: stored, but not "where now"
        officer.lat, officer.lon, officer.fix_ts = fix.lat, fix.lon, fix.fix_ts
        officer.speed_mps = fix.speed_mps
        if fix.battery is not None:
            officer.battery = fix.battery
        out.live.append(
            {
                "type": "officer",
                "device": device,
                "lat": fix.lat,
                "lon": fix.lon,
                "speed_mps": fix.speed_mps,
                "fix_ts": fix.fix_ts.isoformat(),
                "sos": fix.sos,
                "battery": officer.battery,
                "accuracy_m": fix.accuracy_m,
                "source": fix.source,
            }
        )
        x, y = project(fix.lat, fix.lon)
        inside = self._inside(session, officer, fix.lat, fix.lon, fix.fix_ts)
        poor = beats.is_poor(
            accuracy_m=fix.accuracy_m, hdop=fix.hdop, rules=self.rules.beat
        )
        watch, found = beats.on_fix(
            beats.from_dict(officer.watch),
            at=fix.fix_ts,
            inside=inside,
            x=x,
            y=y,
            poor=poor,
            rules=self.rules.beat,
        )
        officer.watch = beats.to_dict(watch)
        for finding in found:
            out.extend(self.alarms.beat_alarm(session, officer, finding, fix.fix_ts))
        return out

    def record_heard(
        self, session: Session, device: str, *, battery: float | None, at: datetime
    ) -> Outbound:
        """A report without a trusted fix: the officer stays where the last put them.

        Used for a phone's cell/Wi-Fi-only, mock or too uncertain reports;
        what they tell beside a position (the battery) is kept.
        """
        officer = self.alarms.officer(session, device)
        if battery is not None:
            officer.battery = battery
        live = {
            "type": "officer",
            "device": device,
            "battery": officer.battery,
            "last_seen": at.isoformat(),
        }
        return Outbound(live=[live])

    def _area(self, session: Session, beat_id: int) -> tuple[Beat, Area] | None:
        beat = session.get(Beat, beat_id)
        if beat is None:
            return None
        cached = self._areas.get(beat_id)
        if cached is None or cached[0] != beat.updated_at:
            cached = (beat.updated_at, make_area(beat.geometry, buffer_m=beat.buffer_m))
            self._areas[beat_id] = cached
        return beat, cached[1]

    def _inside(
        self, session: Session, officer: Officer, lat: float, lon: float, at: datetime
    ) -> bool | None:
        if officer.beat_id is None:
            return None
        found = self._area(session, officer.beat_id)
        if found is None:
            return None
        beat, area = found
        if not on_duty(parse_shifts(beat.shifts), at.astimezone(self.tz)):
            return None
        return area.inside(lat, lon)

    # -- beat and stationary alarms ----------------------------------------------
    # -- SOS ---------------------------------------------------------------------
    # -- receipts and look-ups ---------------------------------------------------
    def _on_receipt(
        self, session: Session, device: str, ack: DispatchAckBody
    ) -> Outbound:
        receipt = session.get(Receipt, (ack.message_id, device))
        if receipt is None:
            receipt = Receipt(message_id=ack.message_id, device=device, sent_at=ack.at)
            session.add(receipt)
        if ack.action == "received":
            receipt.received_at = receipt.received_at or ack.at
        else:
            receipt.received_at = receipt.received_at or ack.at
            receipt.acked_at = receipt.acked_at or ack.at
        return Outbound(
            live=[
                {
                    "type": "receipt",
                    "message_id": ack.message_id,
                    "device": device,
                    "action": ack.action,
                    "at": ack.at.isoformat(),
                }
            ]
        )

    def _on_lookup(self, session: Session, device: str, query: LookupBody) -> Outbound:
        site = (
            session.exec(select(Device.site).where(Device.id == device)).first() or ""
        )
        officer = session.get(Officer, device)
        who = Principal(
            username=device, role="police", scope=(site,) if site else ("*",)
        )
        record: dict[str, Any] = {
            "actor": f"handheld:{device}",
            "action": "lookup",
            "target": f"{query.what}:{query.query}",
            "detail": {
                "reason": query.reason,
                "officer": officer.name if officer else "",
            },
        }
        try:
            check_lookup(self.access, who, site=site, reason=query.reason)
        except ForbiddenError as exc:
            record["action"] = "lookup.refused"
            record["detail"] = {**record["detail"], "error": str(exc)}
            result = LookupResultArgs(query_id=query.query_id, ok=False, error=str(exc))
        else:
            # No person or vehicle registry is connected yet: the answer says so.
            result = LookupResultArgs(
                query_id=query.query_id,
                ok=True,
                result={"status": "no_record", "text": "未查到记录"},
            )
        return Outbound(
            commands=[("lookup_result", device, to_body(result))], audit=[record]
        )

    # -- after the commit ----------------------------------------------------------
    # -- timers ----------------------------------------------------------------------
    def tick(self, engine: sa.Engine) -> None:
        """Repeat and escalate unacknowledged SOS; advance silent beat timers."""
        now = self.clock.now()
        out = Outbound()
        with Session(engine) as session:
            open_sos = session.exec(
                select(Alarm).where(Alarm.kind == "sos", Alarm.state == "raised")
            ).all()
            touched = []
            for alarm in open_sos:
                out.extend(self.alarms.due(session, alarm, now))
                if alarm in session.dirty:
                    touched.append(alarm)
            if self.clock.monotonic() >= self._next_beat_tick:
                self._next_beat_tick = self.clock.monotonic() + 5.0
                out.extend(self.alarms.beat_timers(session, now))
            session.commit()
            for alarm in touched:
                # An operator may have acknowledged it meanwhile: show what is stored.
                session.refresh(alarm)
                out.live.append(alarm_view(alarm))
        self.deliver(out)

    # -- operators -----------------------------------------------------------------
    def send_message(
        self,
        session: Session,
        *,
        sender: str,
        text: str,
        audience: str,
        target: str = "",
        priority: str = "normal",
    ) -> tuple[Message, Outbound]:
        """A message to one officer, a unit or all, with a receipt per recipient.

        Raises:
            InvalidError: an unknown audience, or nobody to send to.
        """
        query = select(Officer.device)
        if audience == "one":
            query = query.where(Officer.device == target)
        elif audience == "group":
            query = query.where(Officer.unit == target)
        elif audience != "all":
            raise InvalidError(f"expected audience one|group|all, got {audience!r}")
        recipients = list(session.exec(query).all())
        if not recipients:
            raise InvalidError(f"no officer matches {audience} {target!r}")
        now = self.clock.now()
        message = Message(
            id=str(uuid_utils.uuid7()),
            sender=sender,
            text=text,
            audience=audience,
            target=target,
            priority=priority,
            created_at=now,
        )
        session.add(message)
        args = to_body(
            DispatchArgs(
                message_id=message.id,
                text=text,
                sender=sender,
                priority=priority,  # type: ignore[arg-type]
                sent_at=now,
            )
        )
        out = Outbound(
            audit=[
                {
                    "actor": sender,
                    "action": "message.send",
                    "target": f"{audience}:{target}",
                    "detail": {"message": message.id, "recipients": len(recipients)},
                }
            ]
        )
        for device in recipients:
            session.add(Receipt(message_id=message.id, device=device, sent_at=now))
            out.commands.append(("dispatch", device, args))
        session.commit()
        session.refresh(message)
        return message, out


def _not_applied(event: dict[str, Any], exc: Exception) -> None:
    logger.warning(
        "Police event %s from %s not applied: %s",
        event.get("type"),
        event.get("device"),
        exc,
    )
