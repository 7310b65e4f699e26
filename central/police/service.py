"""The police service's shell: handheld events in, alarms and alerts out.

The ingest worker hands it the *new* events of its types inside the batch's
transaction (:meth:`PoliceService.take`), so an SOS, a fix or a receipt takes
effect exactly once, with the event; what must go out — alerts to
handhelds, answers to the officer, live updates for the console, audit
records — is returned as an :class:`Outbound` and sent only after the
commit (:meth:`PoliceService.deliver`). :meth:`PoliceService.tick` repeats
and escalates unacknowledged SOS alarms and advances beat timers of silent
handhelds. Operators' actions come through the API. The decisions
themselves live in the pure modules beside this one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import uuid_utils
from sqlmodel import Session, col, select

from central.access import Access, ForbiddenError, check_lookup
from central.auth import Principal
from central.errors import NotFoundError
from central.models import Device, as_utc
from central.police import beat as beats
from central.police import sos as sos_rules
from central.police.geo import Area, Located, make_area, nearest_within, project
from central.police.models import Alarm, Beat, Message, Officer, Position, Receipt
from central.police.reports import on_duty, parse_shifts
from edge.protocol import PayloadError
from edge.protocol.messages import parse_body, to_body
from edge.protocol.police import (
    AlertArgs,
    DispatchAckBody,
    DispatchArgs,
    LookupBody,
    LookupResultArgs,
    PositionBody,
    SosAckArgs,
    SosBody,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import sqlalchemy as sa

    from central.auditlog import AuditLog
    from central.link import CentralLink
    from central.live import Broadcaster
    from edge.clock import Clock

logger = logging.getLogger(__name__)

TYPES = frozenset({"position", "sos", "dispatch_ack", "lookup"})
SOS_TEXT = {
    "raised": "求救已送达指挥中心",
    "acknowledged": "指挥中心已确认，救援正在路上",
    "assigned": "已派警力赶来",
    "resolved": "求救已处置完毕",
    "false_alarm": "已标记为误报",
    "cancelled": "求救已取消",
}


@dataclass(frozen=True, slots=True)
class PoliceRules:
    """Everything configurable about the police service."""

    sos: sos_rules.SosRules = field(default_factory=sos_rules.SosRules)
    beat: beats.BeatRules = field(default_factory=beats.BeatRules)
    fresh_s: float = 600.0  # a fix older than this does not place an officer
    tz: str = "Asia/Shanghai"


@dataclass
class Outbound:
    """What a committed batch sends: commands, console updates, audit records."""

    commands: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    live: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: Outbound) -> None:
        """Add another outbound's items after this one's."""
        self.commands += other.commands
        self.live += other.live
        self.audit += other.audit


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def alarm_view(alarm: Alarm) -> dict[str, Any]:
    """An alarm as the API and the console show it."""
    return {
        "type": "alarm",
        "id": alarm.id,
        "key": alarm.key,
        "kind": alarm.kind,
        "device": alarm.device,
        "state": alarm.state,
        "lat": alarm.lat,
        "lon": alarm.lon,
        "raised_at": _iso(alarm.raised_at),
        "received_at": _iso(alarm.received_at),
        "delayed": alarm.delayed,
        "acknowledged_at": _iso(alarm.acknowledged_at),
        "acknowledged_by": alarm.acknowledged_by,
        "assigned_at": _iso(alarm.assigned_at),
        "responders": alarm.responders,
        "closed_at": _iso(alarm.closed_at),
        "closed_by": alarm.closed_by,
        "note": alarm.note,
        "escalated_at": _iso(alarm.escalated_at),
        "repeats": alarm.repeats,
        "alerted": alarm.alerted,
        "detail": alarm.detail,
    }


class PoliceService:
    """SOS, beats, dispatch and look-ups around the pure cores."""

    types = TYPES

    def __init__(
        self,
        *,
        clock: Clock,
        link: CentralLink | None = None,
        broadcaster: Broadcaster | None = None,
        audit: AuditLog | None = None,
        access: Access | None = None,
        rules: PoliceRules | None = None,
    ) -> None:
        self.clock = clock
        self.link = link
        self.broadcaster = broadcaster
        self.audit = audit
        self.access = access or Access()
        self.rules = rules or PoliceRules()
        self.tz = ZoneInfo(self.rules.tz)
        self._areas: dict[int, tuple[datetime, Area]] = {}
        self._next_beat_tick = 0.0

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
        """Apply events inside the caller's transaction; return what to send."""
        out = Outbound()
        for event in events:
            try:
                out.extend(self._take_one(session, event, now))
            except (PayloadError, ValueError) as exc:
                logger.warning(
                    "Police event %s from %s not applied: %s",
                    event.get("type"),
                    event.get("device"),
                    exc,
                )
        return out

    def _take_one(
        self, session: Session, event: dict[str, Any], now: datetime
    ) -> Outbound:
        device, body = str(event["device"]), dict(event["body"])
        kind = event["type"]
        if kind == "position":
            return self.record_position(session, device, parse_body(PositionBody, body))
        if kind == "sos":
            return self._on_sos(session, device, parse_body(SosBody, body), now)
        if kind == "dispatch_ack":
            return self._on_receipt(session, device, parse_body(DispatchAckBody, body))
        return self._on_lookup(session, device, parse_body(LookupBody, body))

    def _officer(self, session: Session, device: str) -> Officer:
        officer = session.get(Officer, device)
        if officer is None:
            officer = Officer(device=device)
            session.add(officer)
        return officer

    def record_position(
        self, session: Session, device: str, fix: PositionBody
    ) -> Outbound:
        """Store a fix, move the officer, run the beat watch."""
        out = Outbound()
        session.add(
            Position(
                device=device,
                fix_ts=fix.fix_ts,
                lat=fix.lat,
                lon=fix.lon,
                speed_mps=fix.speed_mps,
                course=fix.course,
                hdop=fix.hdop,
                accuracy_m=fix.accuracy_m,
                source=fix.source,
                sos=fix.sos,
            )
        )
        officer = self._officer(session, device)
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
            out.extend(self._beat_alarm(session, officer, finding, fix.fix_ts))
        return out

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
    def _beat_alarm(
        self, session: Session, officer: Officer, finding: str, at: datetime
    ) -> Outbound:
        out = Outbound()
        device = officer.device
        closing = {"beat_return": "beat_exit", "moving": "stationary"}
        if finding in closing:
            for alarm in self._open_alarms(session, device, closing[finding]):
                alarm.state = "resolved"
                alarm.closed_at = at
                alarm.note = (
                    "已返回责任区" if finding == "beat_return" else "已恢复移动"
                )
                out.live.append(alarm_view(alarm))
            return out
        if finding == "beat_leader":
            alarms = self._open_alarms(session, device, "beat_exit")
            leaders = self._leaders(session, officer)
            for alarm in alarms:
                alarm.escalated_at = at
                alarm.detail = {**alarm.detail, "leaders": leaders}
                out.live.append(alarm_view(alarm))
            text = f"{officer.name or device} 离开责任区已超时，请处置"
            for leader in leaders:
                out.commands.append(
                    (
                        "alert",
                        leader,
                        self._alert(
                            f"lead:{device}:{at:%H%M%S}",
                            "beat_leader",
                            text,
                            officer,
                            at,
                        ),
                    )
                )
            return out
        text = {
            "beat_exit": "您已离开责任区，请返回",
            "stationary": "您已长时间未移动，请报告情况",
        }[finding]
        alarm = Alarm(
            key=f"{finding}:{device}:{at.isoformat()}"[:80],
            kind=finding,
            device=device,
            state="raised",
            lat=officer.lat,
            lon=officer.lon,
            raised_at=at,
            received_at=self.clock.now(),
        )
        session.add(alarm)
        session.flush()
        out.live.append(alarm_view(alarm))
        alert_id = f"{finding}:{alarm.id}"
        out.commands.append(
            ("alert", device, self._alert(alert_id, finding, text, officer, at))
        )
        return out

    def _alert(
        self, alert_id: str, kind: str, text: str, about: Officer, at: datetime
    ) -> dict[str, Any]:
        return to_body(
            AlertArgs(
                alert_id=alert_id[:64],
                kind=kind,  # type: ignore[arg-type]
                text=text,
                lat=about.lat,
                lon=about.lon,
                about=about.device,
                raised_at=at,
            )
        )

    def _open_alarms(self, session: Session, device: str, kind: str) -> list[Alarm]:
        return list(
            session.exec(
                select(Alarm).where(
                    Alarm.device == device,
                    Alarm.kind == kind,
                    col(Alarm.state).in_(sos_rules.OPEN),
                )
            ).all()
        )

    def _leaders(self, session: Session, officer: Officer) -> list[str]:
        if not officer.unit:
            return []
        return list(
            session.exec(
                select(Officer.device).where(
                    Officer.unit == officer.unit,
                    col(Officer.leader).is_(True),
                    Officer.device != officer.device,
                )
            ).all()
        )

    # -- SOS ---------------------------------------------------------------------
    def _located(self, session: Session, now: datetime) -> list[Located]:
        since = now - timedelta(seconds=self.rules.fresh_s)
        rows = session.exec(
            select(Officer.device, Officer.lat, Officer.lon).where(
                col(Officer.fix_ts) >= since, col(Officer.lat).is_not(None)
            )
        ).all()
        return [
            Located(d, lat, lon)
            for d, lat, lon in rows
            if lat is not None and lon is not None
        ]

    def _on_sos(
        self, session: Session, device: str, sos: SosBody, now: datetime
    ) -> Outbound:
        out = Outbound()
        alarm = session.exec(select(Alarm).where(Alarm.key == sos.sos_id)).first()
        if alarm is None:
            officer = self._officer(session, device)
            lat = sos.lat if sos.lat is not None else officer.lat
            lon = sos.lon if sos.lon is not None else officer.lon
            alarm = Alarm(
                key=sos.sos_id,
                kind="sos",
                device=device,
                state="raised",
                lat=lat,
                lon=lon,
                raised_at=sos.pressed_at,
                received_at=now,
                delayed=sos_rules.is_delayed(sos.pressed_at, now, self.rules.sos),
                last_alert_at=now,
            )
            session.add(alarm)
            session.flush()
            if lat is not None and lon is not None:
                out.extend(
                    self._alert_nearby(
                        session, alarm, officer, self.rules.sos.radius_m, now
                    )
                )
            logger.warning(
                "SOS %s from %s at %s,%s (%d officers alerted%s)",
                sos.sos_id,
                device,
                lat,
                lon,
                len(alarm.alerted),
                ", delayed" if alarm.delayed else "",
            )
        if sos.phase == "cancelled" and alarm.state in sos_rules.OPEN:
            alarm.state = "cancelled"
            alarm.closed_at = now
            alarm.closed_by = device
            alarm.note = "警员取消"
            officer = self._officer(session, device)
            for item in alarm.alerted:
                out.commands.append(
                    (
                        "alert",
                        item["device"],
                        self._alert(
                            f"sos-off:{alarm.key}",
                            "sos",
                            f"{officer.name or device} 已取消求救",
                            officer,
                            now,
                        ),
                    )
                )
        out.commands.append(("sos_ack", device, self._sos_ack(alarm)))
        out.live.append(alarm_view(alarm))
        return out

    def _alert_nearby(
        self,
        session: Session,
        alarm: Alarm,
        officer: Officer,
        radius_m: float,
        now: datetime,
    ) -> Outbound:
        out = Outbound()
        assert alarm.lat is not None  # noqa: S101 - the caller checked
        assert alarm.lon is not None  # noqa: S101
        already = {a["device"] for a in alarm.alerted}
        nearby = nearest_within(
            alarm.lat,
            alarm.lon,
            self._located(session, now),
            radius_m=radius_m,
            limit=self.rules.sos.max_alerted,
            exclude={alarm.device, *already},
        )
        name = officer.name or alarm.device
        for hit in nearby:
            args = to_body(
                AlertArgs(
                    alert_id=f"sos:{alarm.key}"[:64],
                    kind="sos",
                    text=f"{name} 紧急求救，距您 {hit.distance_m:.0f} 米",
                    lat=alarm.lat,
                    lon=alarm.lon,
                    distance_m=hit.distance_m,
                    about=alarm.device,
                    raised_at=alarm.raised_at,
                    repeat=alarm.repeats,
                )
            )
            out.commands.append(("alert", hit.device, args))
            session.add(
                Receipt(message_id=args["alert_id"], device=hit.device, sent_at=now)
            )
        alarm.alerted = [
            *alarm.alerted,
            *({"device": h.device, "distance_m": h.distance_m} for h in nearby),
        ]
        return out

    def _sos_ack(self, alarm: Alarm) -> dict[str, Any]:
        return to_body(
            SosAckArgs(
                sos_id=alarm.key,
                phase=alarm.state,  # type: ignore[arg-type]
                responders=alarm.responders,
                text=SOS_TEXT.get(alarm.state, ""),
            )
        )

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
    def deliver(self, out: Outbound) -> None:
        """Audit, then send and broadcast what a committed batch decided."""
        now = self.clock.now()
        if self.audit is not None:
            for record in out.audit:
                self.audit.append(now=now, **record)
        if self.link is not None:
            for name, device, args in out.commands:
                self.link.send(device, name, args)
        if self.broadcaster is not None:
            for item in out.live:
                self.broadcaster.publish(item)

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
                out.extend(self._due(session, alarm, now))
                if alarm in session.dirty:
                    touched.append(alarm)
            if self.clock.monotonic() >= self._next_beat_tick:
                self._next_beat_tick = self.clock.monotonic() + 5.0
                out.extend(self._beat_timers(session, now))
            session.commit()
            for alarm in touched:
                # An operator may have acknowledged it meanwhile: show what is stored.
                session.refresh(alarm)
                out.live.append(alarm_view(alarm))
        self.deliver(out)

    def _due(self, session: Session, alarm: Alarm, now: datetime) -> Outbound:
        out = Outbound()
        todo = sos_rules.due(
            phase=alarm.state,
            raised_at=as_utc(alarm.received_at),
            last_alert_at=None
            if alarm.last_alert_at is None
            else as_utc(alarm.last_alert_at),
            escalated=alarm.escalated_at is not None,
            now=now,
            rules=self.rules.sos,
        )
        officer = self._officer(session, alarm.device)
        name = officer.name or alarm.device
        if "escalate" in todo:
            alarm.escalated_at = now
            leaders = self._leaders(session, officer)
            if alarm.lat is not None and alarm.lon is not None:
                out.extend(
                    self._alert_nearby(
                        session, alarm, officer, self.rules.sos.escalate_radius_m, now
                    )
                )
            for leader in leaders:
                out.commands.append(
                    (
                        "alert",
                        leader,
                        self._alert(
                            f"sos:{alarm.key}",
                            "sos",
                            f"{name} 求救 {self.rules.sos.escalate_s:.0f} 秒未获确认",
                            officer,
                            now,
                        ),
                    )
                )
            alarm.detail = {**alarm.detail, "leaders": leaders}
            logger.warning("SOS %s not acknowledged: escalated", alarm.key)
        if "repeat" in todo:
            alarm.repeats += 1
            alarm.last_alert_at = now
            for item in alarm.alerted:
                args = self._alert(
                    f"sos:{alarm.key}",
                    "sos",
                    f"{name} 紧急求救（第 {alarm.repeats + 1} 次提醒）",
                    officer,
                    as_utc(alarm.raised_at),
                )
                args["repeat"] = alarm.repeats
                args["distance_m"] = item.get("distance_m")
                out.commands.append(("alert", item["device"], args))
        return out

    def _beat_timers(self, session: Session, now: datetime) -> Outbound:
        out = Outbound()
        for officer in session.exec(
            select(Officer).where(col(Officer.beat_id).is_not(None))
        ).all():
            watch = beats.from_dict(officer.watch)
            if watch.outside_since is None:
                continue
            watch, found = beats.on_time(watch, at=now, rules=self.rules.beat)
            if found:
                officer.watch = beats.to_dict(watch)
                for finding in found:
                    out.extend(self._beat_alarm(session, officer, finding, now))
        return out

    # -- operators -----------------------------------------------------------------
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
        """Acknowledge, assign, resolve or close an alarm as a false alarm.

        Raises:
            NotFoundError: no such alarm.
            ConflictError: the transition is not allowed from its state.
        """
        alarm = session.get(Alarm, alarm_id)
        if alarm is None:
            raise NotFoundError(f"no alarm {alarm_id}")
        now = self.clock.now()
        sos_rules.advance(alarm.state, to)
        alarm.state = to
        out = Outbound()
        if to == "acknowledged":
            alarm.acknowledged_at, alarm.acknowledged_by = now, by
        elif to == "assigned":
            alarm.assigned_at = now
            alarm.responders = list(dict.fromkeys(responders or []))
            officer = self._officer(session, alarm.device)
            for responder in alarm.responders:
                out.commands.append(
                    (
                        "dispatch",
                        responder,
                        to_body(
                            DispatchArgs(
                                message_id=f"assign:{alarm.id}:{responder}"[:64],
                                text=f"请立即前往支援 {officer.name or alarm.device}",
                                sender=by,
                                priority="urgent",
                                sent_at=now,
                            )
                        ),
                    )
                )
        else:
            alarm.closed_at, alarm.closed_by = now, by
        if note:
            alarm.note = note[:500]
        if alarm.kind == "sos":
            out.commands.append(("sos_ack", alarm.device, self._sos_ack(alarm)))
        out.live.append(alarm_view(alarm))
        out.audit.append(
            {
                "actor": by,
                "action": f"alarm.{to}",
                "target": f"{alarm.kind}:{alarm.device}",
                "detail": {
                    "alarm": alarm.id,
                    "responders": alarm.responders,
                    "note": note,
                },
            }
        )
        session.commit()
        session.refresh(alarm)
        return alarm, out

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
            ValueError: an unknown audience, or nobody to send to.
        """
        query = select(Officer.device)
        if audience == "one":
            query = query.where(Officer.device == target)
        elif audience == "group":
            query = query.where(Officer.unit == target)
        elif audience != "all":
            raise ValueError(f"expected audience one|group|all, got {audience!r}")
        recipients = list(session.exec(query).all())
        if not recipients:
            raise ValueError(f"no officer matches {audience} {target!r}")
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
