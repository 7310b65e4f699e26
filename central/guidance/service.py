"""The guidance service: passages and loop minutes in, travel times and incidents out.

Inside the ingest transaction (:meth:`GuidanceService.take`) it keeps, of
the plate reads at a link's cameras, only a keyed hash of the plate
(:mod:`central.guidance.reid`; the plate service keeps the read itself
under its own rules). On the timers (:meth:`GuidanceService.tick`) it runs
California #7 (:mod:`central.guidance.incident`) on each loop station pair
every few seconds, over the minutes both stations' ``detector`` events have
brought (ingest stores those like every event), and every minute it
matches the passages of each link into trips, stores the minute's travel
time (:mod:`central.guidance.traveltime`; loops where there are no
cameras, both fused where there are both), runs the travel-time watch,
counts the origin–destination journeys of the last hour that is over
(:mod:`central.guidance.od`), and deletes passages past their short
retention.

An incident is kept with its evidence and raises an alarm on the police
alarm desk (kind ``incident``, the police console's list) and a live
``incident`` item for the traffic console; a person confirms or dismisses
it (:meth:`GuidanceService.decide`). Signs and incident signal plans are
not driven from here yet.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from central.errors import ConfigError, ConflictError, NotFoundError
from central.guidance import incident, od, reid, traveltime
from central.guidance.models import (
    GuidanceLink,
    Incident,
    ODCount,
    Passage,
    TravelTime,
)
from central.messaging.outbound import Outbound, Sender
from central.models import Event, as_utc
from central.police.models import Alarm
from central.police.views import alarm_view
from edge.protocol.messages import parse_body
from edge.protocol.plates import PlateEventBody

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import sqlalchemy as sa

    from edge.clock import Clock

logger = logging.getLogger(__name__)

TYPES = frozenset({"plate"})
FORGET_S = 30.0  # how long the links' devices are known before reading again
SECRET_FILE = "guidance-plate.key"  # noqa: S105 - a file name, not a secret
DECISIONS = {"confirmed": "acknowledged", "dismissed": "false_alarm"}


@dataclass(frozen=True, slots=True)
class GuidanceRules:
    """Retention, matching and the detectors' parameters."""

    retention_h: float = 2.0  # passages (hashes) are deleted after this
    max_trip_s: float = 1800.0  # a longer trip is two journeys or a detour
    min_trip_s: float = 10.0
    grace_s: float = 30.0  # a minute is computed this long after it ends
    catch_up_min: int = 15  # minutes computed per tick at most
    loop_tick_s: float = 5.0  # how often the loop pairs are stepped
    loop_lookback_min: int = 5  # a station's minute later than this is skipped
    filters: traveltime.Rules = field(default_factory=traveltime.Rules)
    thresholds: incident.Thresholds = field(default_factory=incident.Thresholds)
    watch: incident.WatchRules = field(default_factory=incident.WatchRules)


def load_or_create_secret(data_dir: Path, name: str = SECRET_FILE) -> bytes:
    """Central's key for plate hashes in ``data_dir``, made on first use (0600).

    One found readable by others (copied, restored from a backup) is made
    0600: with it, the hashes of the small plate space can be reversed.

    Raises:
        ConfigError: the file holds fewer than 32 bytes.
    """
    path = data_dir / name
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(reid.KEY_BYTES))
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:  # copied or restored with others' access: close it
        logger.warning(
            "%s was readable by others (%o): made it 0600 (the plate hashes' key)",
            path,
            mode,
        )
        path.chmod(0o600)
    secret = path.read_bytes()
    if len(secret) < reid.KEY_BYTES:
        raise ConfigError(
            f"expected a key of {reid.KEY_BYTES}+ bytes in {path}, got {len(secret)}"
        )
    return secret


def incident_view(row: Incident, link: GuidanceLink | None) -> dict[str, Any]:
    """An incident as the API and the live stream show it."""
    return {
        "type": "incident",
        "id": row.id,
        "link": row.link,
        "name": link.name if link is not None else "",
        "lat": link.lat if link is not None else None,
        "lon": link.lon if link is not None else None,
        "source": row.source,
        "lane": row.lane,
        "state": row.state,
        "raised_at": as_utc(row.raised_at).isoformat(),
        "evidence": row.evidence,
        "alarm": row.alarm,
        "decided_by": row.decided_by,
        "note": row.note,
    }


def _text(row: Incident, link: GuidanceLink) -> str:
    where = link.name or link.id
    if row.source == "loops":
        return f"{where} 第{row.lane}车道疑似受阻（检测器比较法）"
    return f"{where} 行程时间异常升高"


class GuidanceService:
    """Hashes passages, computes travel times, detects incidents."""

    types = TYPES

    def __init__(
        self,
        *,
        clock: Clock,
        secret: bytes,
        sender: Sender | None = None,
        rules: GuidanceRules | None = None,
        tick_s: float = 20.0,
    ) -> None:
        """Build the service.

        Args:
            clock: the time of minutes and retention.
            secret: central's key for the plate hashes (32+ bytes; never
                leaves the process).
            sender: what a commit sends (alarms, console updates).
            rules: retention, matching and detection parameters.
            tick_s: how often :meth:`tick` does its work.
        """
        reid.plate_key(secret, day="check")  # fail fast on a short key
        self.clock = clock
        self.secret = secret
        self.sender = sender or Sender(clock=clock)
        self.rules = rules or GuidanceRules()
        self.tick_s = tick_s
        self._next_tick = 0.0
        self._known: frozenset[str] | None = None
        self._next_loops = 0.0
        self._od_done: set[datetime] = set()
        self._forget_at = 0.0

    # -- events (inside the ingest transaction) -------------------------------
    def take(
        self, session: Session, events: list[dict[str, Any]], now: datetime
    ) -> Callable[[], None]:
        """Keep the passages and run the loop detectors; return the after-commit."""
        del now  # the minutes are the events' own
        out = Outbound()
        cameras = self._cameras(session)
        if not any(str(e["device"]) in cameras for e in events):
            return lambda: None  # most batches: no link's camera (no query)
        for event in events:
            device = str(event["device"])
            try:
                if event["type"] == "plate" and device in cameras:
                    self._passage(session, event)
            except (KeyError, TypeError, ValueError) as exc:
                logger.warning(
                    "Guidance: %s event from %s not used: %s",
                    event["type"],
                    device,
                    exc,
                )
        return lambda: self.sender.deliver(out)

    def _cameras(self, session: Session) -> frozenset[str]:
        """The links' cameras (cached for :data:`FORGET_S`)."""
        if self._known is None or self.clock.monotonic() >= self._forget_at:
            links = session.exec(select(GuidanceLink)).all()
            cameras = {x for link in links for x in (link.origin, link.destination)}
            self._known = frozenset(cameras - {""})
            self._forget_at = self.clock.monotonic() + FORGET_S
        return self._known

    def forget(self) -> None:
        """Read the links again on the next batch (one was added or changed)."""
        self._known = None

    def _passage(self, session: Session, event: dict[str, Any]) -> None:
        body = parse_body(PlateEventBody, dict(event["body"]))
        at = as_utc(body.seen_at)
        key = reid.plate_key(self.secret, day=at.date().isoformat())
        # A camera may send one read again under a new envelope (after a
        # restart): the second is ignored, never an error that fails the batch.
        insert = (
            postgresql.insert
            if session.get_bind().dialect.name == "postgresql"
            else sqlite.insert
        )
        table: sa.Table = Passage.__table__  # type: ignore[attr-defined]
        session.execute(
            insert(table)
            .values(
                read_id=f"{event['device']}:{body.read_id}"[:64],
                camera=str(event["device"]),
                plate_hash=reid.hash_plate(key, body.text),
                at=at,
            )
            .on_conflict_do_nothing(index_elements=["read_id"])
        )

    def step_loops(self, session: Session, now: datetime) -> Outbound:
        """Step every station pair over the minutes both its stations have sent.

        Run by the timer, not inside ingest: the two stations of a pair may
        be taken by two ingest workers at once (partitions, shared
        subscriptions), each unable to see the other's uncommitted minute.
        Minutes are stepped in order; one a station never sent is skipped.
        """
        out = Outbound()
        links = [
            link for link in session.exec(select(GuidanceLink)).all() if link.loops
        ]
        devices = {
            str(p[k]) for link in links for p in link.loops for k in ("up", "down")
        }
        if not devices:
            return out
        since = now - timedelta(minutes=self.rules.loop_lookback_min)
        minutes: dict[str, dict[str, dict[str, Any]]] = {}
        for device, body in session.exec(
            select(Event.device, Event.body).where(
                col(Event.device).in_(sorted(devices)),
                Event.type == "detector",
                col(Event.ts) >= since,
            )
        ).all():
            if isinstance(body, dict) and "start" in body:
                minutes.setdefault(device, {})[str(body["start"])] = dict(body)
        for link in links:
            for i, pair in enumerate(link.loops):
                up = minutes.get(str(pair.get("up")), {})
                down = minutes.get(str(pair.get("down")), {})
                for start in sorted(up.keys() & down.keys()):
                    out.extend(
                        self._step_pair(
                            session,
                            link=link,
                            index=i,
                            pair=pair,
                            start=start,
                            up=up[start],
                            down=down[start],
                        )
                    )
        return out

    @staticmethod
    def _minute(session: Session, device: str, start: str) -> dict[str, Any] | None:
        """The detector minute ``start`` of ``device``, if it has arrived."""
        begins = as_utc(datetime.fromisoformat(start))
        rows = session.exec(
            select(Event.body).where(
                Event.device == device,
                Event.type == "detector",
                col(Event.ts) >= begins - timedelta(minutes=5),
            )
        ).all()
        return next((dict(b) for b in rows if b.get("start") == start), None)

    def _step_pair(
        self,
        session: Session,
        *,
        link: GuidanceLink,
        index: int,
        pair: dict[str, Any],
        start: str,
        up: dict[str, Any],
        down: dict[str, Any],
    ) -> Outbound:
        out = Outbound()
        state = dict(link.state)
        pairs = dict(state.get("pairs", {}))
        mine = pairs.get(str(index), {})
        if mine.get("minute", "") >= start:
            return out  # stepped already (a redelivery, or both came at once)
        lanes = tuple(int(n) for n in pair.get("lanes", []))
        occ = {
            name: {
                int(item["lane"]): float(item.get("occupancy_pct", 0.0))
                for item in body.get("lanes", [])
            }
            for name, body in (("up", up), ("down", down))
        }
        before = incident.LaneStates(
            {int(k): int(v) for k, v in mine.get("states", {}).items()}
        )
        after, found = before.step(
            occ["up"], occ["down"], lanes=lanes, thresholds=self.rules.thresholds
        )
        pairs[str(index)] = {
            "minute": start,
            "states": {str(k): v for k, v in after.states.items()},
        }
        state["pairs"] = pairs
        link.state = state
        session.add(link)
        at = as_utc(datetime.fromisoformat(start)) + timedelta(minutes=1)
        for lane, finding in found:
            evidence = {**finding.evidence, "up": pair["up"], "down": pair["down"]}
            out.extend(
                self._finding(
                    session,
                    link=link,
                    source="loops",
                    lane=lane,
                    kind=finding.kind,
                    evidence=evidence,
                    at=at,
                )
            )
        return out

    # -- incidents -----------------------------------------------------------
    def _finding(
        self,
        session: Session,
        *,
        link: GuidanceLink,
        source: str,
        lane: int | None,
        kind: str,
        evidence: dict[str, Any],
        at: datetime,
    ) -> Outbound:
        out = Outbound()
        if kind == "cleared":
            for row in session.exec(
                select(Incident).where(
                    Incident.link == link.id,
                    Incident.source == source,
                    col(Incident.lane).is_(None)
                    if lane is None
                    else Incident.lane == lane,
                    col(Incident.state).in_(("raised", "confirmed")),
                )
            ).all():
                row.state, row.cleared_at = "cleared", at
                session.add(row)
                alarm = session.get(Alarm, row.alarm) if row.alarm else None
                if alarm is not None and alarm.closed_at is None:
                    alarm.state, alarm.closed_at = "resolved", at
                    alarm.closed_by, alarm.note = "guidance", "交通已恢复正常"
                    session.add(alarm)
                    out.live.append(alarm_view(alarm))
                out.live.append(incident_view(row, link))
            return out
        row = Incident(
            link=link.id,
            source=source,
            lane=lane,
            state="raised",
            raised_at=at,
            evidence=evidence,
        )
        alarm = Alarm(
            key=f"incident:{link.id}:{source}:{lane}:{at:%Y%m%d%H%M}"[:80],
            kind="incident",
            device=link.id,
            state="raised",
            lat=link.lat,
            lon=link.lon,
            raised_at=at,
            received_at=self.clock.now(),
            detail={"text": _text(row, link), "link": link.id, **evidence},
        )
        session.add(alarm)
        session.flush()
        row.alarm = alarm.id
        session.add(row)
        session.flush()
        logger.info("Incident on %s (%s, lane %s): %s", link.id, source, lane, evidence)
        out.live += [alarm_view(alarm), incident_view(row, link)]
        return out

    def decide(
        self, session: Session, incident_id: int, *, decision: str, by: str, note: str
    ) -> tuple[Incident, Outbound]:
        """Confirm or dismiss a raised incident (and its alarm); the caller commits.

        Raises:
            NotFoundError: no such incident.
            ConflictError: it was decided or cleared already.
        """
        row = session.get(Incident, incident_id)
        if row is None:
            raise NotFoundError(f"no incident {incident_id}")
        if row.state != "raised":
            raise ConflictError(
                f"incident {incident_id}: expected state 'raised', got {row.state!r}"
            )
        now = self.clock.now()
        row.state, row.decided_by, row.decided_at = decision, by, now
        row.note = note[:500]
        session.add(row)
        out = Outbound()
        alarm = session.get(Alarm, row.alarm) if row.alarm else None
        if alarm is not None and alarm.closed_at is None:
            alarm.state = DECISIONS[decision]
            if decision == "confirmed":
                alarm.acknowledged_at, alarm.acknowledged_by = now, by
            else:
                alarm.closed_at, alarm.closed_by = now, by
            session.add(alarm)
            out.live.append(alarm_view(alarm))
        out.live.append(incident_view(row, session.get(GuidanceLink, row.link)))
        out.audit.append(
            {
                "actor": by,
                "action": f"incident.{decision}",
                "target": f"incident/{incident_id}",
                "detail": {"link": row.link, "note": note[:200]},
            }
        )
        return row, out

    # -- every minute ----------------------------------------------------------
    def tick(self, engine: sa.Engine) -> None:
        """Step the loop pairs every few seconds, and the minutes every ``tick_s``.

        The minutes: each link's closed minutes, the watch, the OD hour and
        the purge of passages past their retention.
        """
        mono = self.clock.monotonic()
        loops, minutes = mono >= self._next_loops, mono >= self._next_tick
        if not (loops or minutes):
            return
        out = Outbound()
        with Session(engine) as session:
            if loops:
                self._next_loops = mono + self.rules.loop_tick_s
                out.extend(self.step_loops(session, self.clock.now()))
            if minutes:
                self._next_tick = mono + self.tick_s
                out.extend(self.compute(session, self.clock.now()))
            session.commit()
        self.sender.deliver(out)

    def compute(self, session: Session, now: datetime) -> Outbound:
        """Every link's closed minutes up to ``now``; the caller commits."""
        out = Outbound()
        last = traveltime.minute_of(now - timedelta(seconds=self.rules.grace_s))
        for link in session.exec(select(GuidanceLink)).all():
            since = (
                as_utc(link.computed_until)
                if link.computed_until is not None
                else last - timedelta(minutes=self.rules.catch_up_min)
            )
            since = max(since, last - timedelta(minutes=self.rules.catch_up_min))
            minute = since
            while minute < last:
                out.extend(self._minute_of_link(session, link, minute))
                minute += timedelta(minutes=1)
            link.computed_until = last
            session.add(link)
        self._od(session, now)
        cutoff = now - timedelta(hours=self.rules.retention_h)
        old = session.exec(select(Passage).where(col(Passage.at) < cutoff)).all()
        for row in old:
            session.delete(row)
        if old:
            logger.info("Deleted %d plate hashes past retention", len(old))
        return out

    def _od(self, session: Session, now: datetime) -> None:
        """Count the last hour whose journeys are over (before its hashes go)."""
        hour = od.hour_of(now - timedelta(hours=1, seconds=self.rules.max_trip_s))
        if hour in self._od_done:
            return
        end = hour + timedelta(hours=1, seconds=self.rules.max_trip_s)
        rows = session.exec(
            select(Passage).where(col(Passage.at) >= hour, col(Passage.at) < end)
        ).all()
        counts = od.od_counts(
            (reid.Passage(r.camera, r.plate_hash, as_utc(r.at)) for r in rows),
            hour=hour,
            max_gap_s=self.rules.max_trip_s,
        )
        for old in session.exec(select(ODCount).where(ODCount.hour == hour)).all():
            session.delete(old)
        session.flush()
        for (origin, destination), trips in counts.items():
            session.add(
                ODCount(hour=hour, origin=origin, destination=destination, trips=trips)
            )
        self._od_done = {hour}
        logger.info("OD counts of %s: %d journeys", hour, sum(counts.values()))

    def _minute_of_link(
        self, session: Session, link: GuidanceLink, minute: datetime
    ) -> Outbound:
        camera = self._camera_estimate(session, link, minute)
        loops = self._loop_estimate(session, link, minute)
        fused = traveltime.fuse(camera, loops)
        if fused is None:
            return Outbound()
        row = session.get(TravelTime, (link.id, minute)) or TravelTime(
            link=link.id,
            minute=minute,
            seconds=0,
            sd=0,
            samples=0,
            source="",
            confidence=0,
        )
        row.seconds, row.sd, row.samples = fused.seconds, fused.sd, fused.samples
        row.source, row.confidence = fused.source, fused.confidence
        session.add(row)
        state = dict(link.state)
        raw = state.get("watch", {})
        watch = incident.TravelTimeWatch(
            history=tuple(raw.get("history", ())),
            over=int(raw.get("over", 0)),
            active=bool(raw.get("active", False)),
        )
        watch, finding = watch.step(fused.seconds, rules=self.rules.watch)
        state["watch"] = {
            "history": list(watch.history),
            "over": watch.over,
            "active": watch.active,
        }
        link.state = state
        out = Outbound()
        out.live.append(
            {
                "type": "travel_time",
                "link": link.id,
                "minute": minute.isoformat(),
                "seconds": round(fused.seconds, 1),
                "confidence": fused.confidence,
                "source": fused.source,
            }
        )
        if finding is not None:
            out.extend(
                self._finding(
                    session,
                    link=link,
                    source="travel_time",
                    lane=None,
                    kind=finding.kind,
                    evidence=dict(finding.evidence),
                    at=minute + timedelta(minutes=1),
                )
            )
        return out

    def _camera_estimate(
        self, session: Session, link: GuidanceLink, minute: datetime
    ) -> traveltime.Estimate | None:
        if not link.origin or not link.destination:
            return None
        rules = self.rules
        window_start = minute - timedelta(minutes=rules.filters.window_min - 1)
        end = minute + timedelta(minutes=1)

        def passages(camera: str, since: datetime) -> list[reid.Passage]:
            rows = session.exec(
                select(Passage).where(
                    Passage.camera == camera,
                    col(Passage.at) >= since,
                    col(Passage.at) < end,
                )
            ).all()
            return [reid.Passage(r.camera, r.plate_hash, as_utc(r.at)) for r in rows]

        trips = reid.match_passages(
            passages(link.origin, window_start - timedelta(seconds=rules.max_trip_s)),
            passages(link.destination, window_start),
            max_s=rules.max_trip_s,
            min_s=max(rules.min_trip_s, 0.5 * link.free_flow_s),
        )
        this = [t.seconds for t in trips if traveltime.minute_of(t.exited) == minute]
        if not this:
            return None
        window = [t.seconds for t in trips]
        return traveltime.robust_estimate(this, window, rules=rules.filters)

    def _loop_estimate(
        self, session: Session, link: GuidanceLink, minute: datetime
    ) -> traveltime.Estimate | None:
        if not link.loops or link.length_m <= 0:
            return None
        devices = {str(p[k]) for p in link.loops for k in ("up", "down") if k in p}
        start = minute.isoformat()
        speeds = []
        for device in sorted(devices):
            body = self._minute(session, device, start)
            if body is None:
                continue
            lanes = [
                (float(x["speed_kmh"]), int(x.get("count", 1)))
                for x in body.get("lanes", [])
                if x.get("speed_kmh")
            ]
            total = sum(n for _, n in lanes)
            if total:
                speeds.append(sum(s * n for s, n in lanes) / total)
        return traveltime.loop_estimate(
            length_m=link.length_m, speeds_kmh=speeds, free_flow_s=link.free_flow_s
        )
