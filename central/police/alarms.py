"""The alarm desk: SOS, beat and stationary alarms and the alerts they send.

A part of :class:`central.police.service.PoliceService` (it holds one)
doing everything that raises, repeats, escalates and closes alarms; it
decides with the pure cores (:mod:`central.police.sos`,
:mod:`central.police.beat`, :mod:`central.police.geo`) and returns
:class:`Outbound` values — sending is the service's sender's job, after the
commit.
"""

from __future__ import annotations

import hashlib
import logging
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from central.errors import NotFoundError
from central.messaging.outbound import Outbound
from central.models import as_utc
from central.police import beat as beats
from central.police import sos as sos_rules
from central.police.geo import Located, box_around, nearest_within
from central.police.models import Alarm, Officer, Receipt
from central.police.views import SOS_TEXT, alarm_view
from edge.protocol.messages import to_body
from edge.protocol.police import AlertArgs, DispatchArgs, SosAckArgs

if TYPE_CHECKING:
    from collections.abc import Iterable

    from central.police.rules import PoliceRules
    from edge.clock import Clock
    from edge.protocol.police import SosBody

logger = logging.getLogger(__name__)
JOINED_MAX = 20  # SOS ids kept on the open alarm they joined


class AlarmDesk:
    """Raise, repeat, escalate and close alarms (the police service holds one)."""

    def __init__(self, *, clock: Clock, rules: PoliceRules) -> None:
        """Build the desk over the service's clock and rules."""
        self.clock = clock
        self.rules = rules

    def officer(self, session: Session, device: str) -> Officer:
        """The handheld's officer row, added (race-free) if absent."""
        officer = session.get(Officer, device)
        if officer is None:
            # Another ingest worker may be adding the same handheld in this
            # second: insert if absent (waiting on its commit), then read.
            bind = session.get_bind().dialect.name
            insert = postgresql.insert if bind == "postgresql" else sqlite.insert
            values = Officer(device=device).model_dump()
            session.execute(insert(Officer).values(values).on_conflict_do_nothing())
            officer = session.get_one(Officer, device)
        return officer

    def officers(self, session: Session, devices: Iterable[str]) -> dict[str, Officer]:
        """The handhelds' officer rows in one query, the absent ones added.

        A batch of positions reads every officer it moves at once instead of
        one SELECT per fix (:meth:`officer`, race-free the same way).
        """
        wanted = sorted(set(devices))
        if not wanted:
            return {}
        query = select(Officer).where(col(Officer.device).in_(wanted))
        found = {o.device: o for o in session.exec(query).all()}
        missing = [d for d in wanted if d not in found]
        if missing:
            bind = session.get_bind().dialect.name
            insert = postgresql.insert if bind == "postgresql" else sqlite.insert
            rows = [Officer(device=d).model_dump() for d in missing]
            session.execute(insert(Officer).on_conflict_do_nothing(), rows)
            added = select(Officer).where(col(Officer.device).in_(missing))
            found.update((o.device, o) for o in session.exec(added).all())
        return found

    def beat_alarm(
        self, session: Session, officer: Officer, finding: str, at: datetime
    ) -> Outbound:
        """Raise (or keep) the alarm a beat finding names, alerting the leaders."""
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

    def _located(
        self,
        session: Session,
        now: datetime,
        near: tuple[float, float, float],
        *,
        nearest: int,
    ) -> list[Located]:
        """The ``nearest`` officers placed recently in the box around ``near``.

        ``near`` is (lat, lon, R). The database ranks them by a flat-earth
        distance (within 0.1 % of the projected one over a few kilometres)
        and returns only the first ``nearest``: an SOS among thousands of
        officers reads a few hundred rows, not all of them; the caller
        measures those exactly.
        """
        lat, lon, _radius = near
        since = now - timedelta(seconds=self.rules.fresh_s)
        south, north, west, east = box_around(*near)
        squash = math.cos(math.radians(lat))
        dlat = col(Officer.lat) - lat
        dlon = (col(Officer.lon) - lon) * squash
        rows = session.exec(
            select(Officer.device, Officer.lat, Officer.lon)
            .where(
                col(Officer.fix_ts) >= since,
                col(Officer.lat).between(south, north),
                col(Officer.lon).between(west, east),
            )
            .order_by(dlat * dlat + dlon * dlon)
            .limit(nearest)
        ).all()
        return [
            Located(d, lat, lon)
            for d, lat, lon in rows
            if lat is not None and lon is not None
        ]

    def on_sos(
        self, session: Session, device: str, sos: SosBody, now: datetime
    ) -> Outbound:
        """An SOS phase from a handheld: raise, update or cancel its alarm."""
        out = Outbound()
        # An alarm belongs to the device that raised it: another device's phase
        # with the same id never touches it (and gets a key of its own).
        own_key = _own_key(device, sos.sos_id)
        alarm = session.exec(
            select(Alarm).where(
                Alarm.device == device, col(Alarm.key).in_([sos.sos_id, own_key])
            )
        ).first()
        if alarm is None:
            alarm = self._join_open(session, device, sos)
        if alarm is None:
            taken = session.exec(
                select(Alarm.id).where(Alarm.key == sos.sos_id)
            ).first()
            officer = self.officer(session, device)
            lat = sos.lat if sos.lat is not None else officer.lat
            lon = sos.lon if sos.lon is not None else officer.lon
            alarm = Alarm(
                key=sos.sos_id if taken is None else own_key,
                detail={"sos_id": sos.sos_id},
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
            officer = self.officer(session, device)
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
        out.commands.append(("sos_ack", device, self._sos_ack(alarm, sos.sos_id)))
        out.live.append(alarm_view(alarm))
        return out

    def _join_open(self, session: Session, device: str, sos: SosBody) -> Alarm | None:
        """The device's open SOS alarm, which a new SOS joins (red team wave 8).

        One officer in distress is one alarm: a second press (or a handheld
        that makes up SOS ids) while one is open moves that alarm to the
        newest place and counts the press, instead of raising another and
        alerting more officers. The ids that joined are kept (at most
        :data:`JOINED_MAX`) so their repeats and cancels find the alarm.
        """
        alarm = session.exec(
            select(Alarm).where(
                Alarm.device == device,
                Alarm.kind == "sos",
                col(Alarm.state).in_(sos_rules.OPEN),
            )
        ).first()
        if alarm is None:
            return None
        joined = [str(x) for x in alarm.detail.get("joined", [])]
        presses = int(alarm.detail.get("presses", 1))
        if sos.sos_id not in joined and sos.phase == "raised":
            joined = [*joined, sos.sos_id][-JOINED_MAX:]
            presses += 1
            if sos.lat is not None and sos.lon is not None:
                alarm.lat, alarm.lon = sos.lat, sos.lon
        alarm.detail = {**alarm.detail, "joined": joined, "presses": presses}
        session.add(alarm)
        logger.warning(
            "SOS %s from %s joins its open alarm %s (press %d)",
            sos.sos_id,
            device,
            alarm.key,
            presses,
        )
        return alarm

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
            self._located(
                session,
                now,
                (alarm.lat, alarm.lon, radius_m),
                # Ten times what is needed (and those to skip): the flat
                # ranking cannot push a true nearest one out of that many.
                nearest=10 * self.rules.sos.max_alerted + len(already) + 1,
            ),
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

    def _sos_ack(self, alarm: Alarm, sos_id: str | None = None) -> dict[str, Any]:
        return to_body(
            SosAckArgs(
                sos_id=sos_id or str(alarm.detail.get("sos_id", alarm.key)),
                phase=alarm.state,  # type: ignore[arg-type]
                responders=alarm.responders,
                text=SOS_TEXT.get(alarm.state, ""),
            )
        )

    def due(self, session: Session, alarm: Alarm, now: datetime) -> Outbound:
        """Repeat or escalate an unacknowledged SOS alarm when it falls due."""
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
        officer = self.officer(session, alarm.device)
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

    def beat_timers(self, session: Session, now: datetime) -> Outbound:
        """Advance the beat timers of handhelds that have gone silent."""
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
                    out.extend(self.beat_alarm(session, officer, finding, now))
        return out

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
            officer = self.officer(session, alarm.device)
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


def _own_key(device: str, sos_id: str) -> str:
    """The key of ``device``'s alarm ``sos_id`` when another device holds that id."""
    digest = hashlib.sha256(f"{device}\n{sos_id}".encode()).hexdigest()[:24]
    return f"{sos_id[:32]}~{digest}"
