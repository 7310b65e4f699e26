"""The plate service's shell: camera events in, sightings, hits and alarms out.

The ingest worker hands it new ``plate`` and ``violation`` events inside
the batch's transaction (:meth:`PlateService.take`). Each read is stored as
a sighting with its evidence verified (hashes, signature, the node's fleet
certificate) and its images kept under ``<data_dir>/evidence`` by SHA-256;
a read whose evidence fails is still stored, marked with the reason — a
read is never lost. The read is matched against the suspect list
(:mod:`central.plates.match`): an exact hit raises an alarm on the command
console and, for the categories that call for it, alerts the officers near
the camera; a possible hit waits for a person to confirm it with the image.
Sightings that hit nothing are deleted after the retention period
(privacy). Sending happens after the commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from central.errors import ConflictError, NotFoundError
from central.messaging.outbound import Outbound, Sender
from central.models import Device, as_utc
from central.plates.match import Listed, Match, SuspectIndex
from central.plates.models import Hit, Sighting, Suspect, Violation
from central.police.geo import Located, nearest_within
from central.police.models import Alarm, Officer
from central.police.sos import OPEN
from central.police.views import alarm_view
from edge.protocol import PayloadError
from edge.protocol.evidence import EvidenceError, Verified, verify
from edge.protocol.messages import parse_body, to_body
from edge.protocol.plates import PlateEventBody, ViolationBody
from edge.protocol.police import AlertArgs

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from cryptography import x509

    from edge.clock import Clock

logger = logging.getLogger(__name__)

TYPES = frozenset({"plate", "violation"})
CATEGORIES = {
    "stolen": "被盗抢车辆",
    "wanted": "在逃人员车辆",
    "unpaid": "欠费车辆",
    "inspection": "逾期未检",
    "other": "其他布控",
}


@dataclass(frozen=True, slots=True)
class PlateRules:
    """Matching, retention and alarm routing."""

    unsure_below: float = 0.9
    retention_days: float = 30.0
    handheld_categories: frozenset[str] = frozenset({"stolen", "wanted"})
    radius_m: float = 3000.0
    fresh_s: float = 600.0
    # A listed plate read again at the same camera within this many seconds
    # of its last sighting updates the open alarm (count, last seen) instead
    # of raising a new one; 0 raises one per hit.
    repeat_window_s: float = 900.0


def hit_view(hit: Hit) -> dict[str, Any]:
    """A hit as the API and the live stream show it."""
    return {
        "type": "plate_hit",
        "id": hit.id,
        "sighting_id": hit.sighting_id,
        "suspect_id": hit.suspect_id,
        "read": hit.read,
        "listed": hit.listed,
        "category": hit.category,
        "category_name": CATEGORIES.get(hit.category, hit.category),
        "kind": hit.kind,
        "score": round(hit.score, 4),
        "state": hit.state,
        "alarm_id": hit.alarm_id,
        "decided_by": hit.decided_by,
        "created_at": as_utc(hit.created_at).isoformat(),
    }


def sighting_view(s: Sighting) -> dict[str, Any]:
    """A sighting as the API and the live stream show it."""
    return {
        "type": "plate_read",
        "id": s.id,
        "read_id": s.read_id,
        "device": s.device,
        "plate": s.plate,
        "confidence": s.confidence,
        "colour": s.colour,
        "seen_at": as_utc(s.seen_at).isoformat(),
        "lat": s.lat,
        "lon": s.lon,
        "frames": s.frames,
        "alternatives": s.alternatives,
        "evidence": s.evidence,
        "hit": s.hit,
    }


@dataclass
class _Index:
    index: SuspectIndex = field(default_factory=SuspectIndex)
    version: tuple[int, int] = (-1, -1)


class PlateService:
    """Sightings, matching, hits and their alarms."""

    types = TYPES

    def __init__(
        self,
        *,
        clock: Clock,
        data_dir: Path,
        issuers: Callable[[], list[x509.Certificate]] = list,
        sender: Sender | None = None,
        rules: PlateRules | None = None,
    ) -> None:
        """Build the service over its collaborators.

        Args:
            clock: the time of sightings, hits and retention.
            data_dir: evidence images are kept under ``<data_dir>/evidence``.
            issuers: the fleet CA certificates a camera's evidence chains to.
            sender: what a commit sends (alerts, console updates, audit);
                none sends nothing, for callers that read only the database.
            rules: thresholds, retention and who is alerted.
        """
        self.clock = clock
        self.evidence_dir = data_dir / "evidence"
        self.issuers = issuers
        self.sender = sender or Sender(clock=clock)
        self.rules = rules or PlateRules()
        self._index = _Index()
        self._next_tick = 0.0

    # -- the suspect list --------------------------------------------------------
    def index(self, session: Session) -> SuspectIndex:
        """The suspect index, rebuilt when the list changed."""
        count, top = session.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.max(Suspect.id), 0))
        ).one()
        version = (int(count), int(top))
        if version != self._index.version:
            now = self.clock.now()
            rows = session.exec(select(Suspect)).all()
            self._index = _Index(
                SuspectIndex(
                    Listed(int(r.id or 0), r.plate, r.category)
                    for r in rows
                    if as_utc(r.valid_from) <= now
                    and (r.valid_until is None or as_utc(r.valid_until) > now)
                ),
                version,
            )
        return self._index.index

    def invalidate(self) -> None:
        """Forget the index (the list changed in a way the count may not show)."""
        self._index = _Index()

    # -- events from cameras (inside the ingest transaction) ---------------------
    def take(
        self, session: Session, events: list[dict[str, Any]], now: datetime
    ) -> Callable[[], None]:
        """Apply new plate and violation events; return what to send after commit."""
        out = Outbound()
        for event in events:
            try:
                if event["type"] == "plate":
                    body = parse_body(PlateEventBody, dict(event["body"]))
                    out.extend(self.record(session, str(event["device"]), body, now))
                else:
                    vbody = parse_body(ViolationBody, dict(event["body"]))
                    self.record_violation(session, str(event["device"]), vbody, now)
            except (PayloadError, ValueError) as exc:
                logger.warning(
                    "Camera event from %s not applied: %s", event["device"], exc
                )
        return lambda: self.sender.deliver(out)

    def _keep(self, device: str, package: dict[str, Any]) -> dict[str, Any]:
        """Verify a package and keep its images; describe what was found."""
        try:
            checked: Verified = verify(package, device=device, issuers=self.issuers())
        except EvidenceError as exc:
            logger.warning("Evidence from %s refused: %s", device, exc)
            return {"verified": False, "error": exc.reason, "detail": str(exc)}
        self.evidence_dir.mkdir(parents=True, exist_ok=True)
        hashes = dict(package["sha256"])
        for name, data in checked.images.items():
            path = self.evidence_dir / f"{hashes[name]}.jpg"
            if not path.exists():
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(data)
                tmp.replace(path)
        return {
            "verified": True,
            "trust": checked.trust,
            "digest": checked.digest,
            "images": hashes,
            "signature": package.get("signature", ""),
            "alg": package.get("alg", ""),
        }

    def record(
        self, session: Session, device: str, body: PlateEventBody, now: datetime
    ) -> Outbound:
        """Store a read, match it, raise what it calls for."""
        camera = session.get(Device, device)
        sighting = Sighting(
            read_id=body.read_id,
            device=device,
            plate=body.text,
            confidence=body.confidence,
            colour=body.colour,
            seen_at=body.seen_at,
            received_at=now,
            frames=body.frames,
            lat=camera.lat if camera else None,
            lon=camera.lon if camera else None,
            alternatives=[a.model_dump() for a in body.alternatives],
            evidence=self._keep(device, body.evidence),
        )
        matches = self.index(session).match(
            body.text,
            confidence=body.confidence,
            alternatives=[a.text for a in body.alternatives],
            unsure_below=self.rules.unsure_below,
        )
        sighting.hit = bool(matches)
        session.add(sighting)
        session.flush()
        out = Outbound(live=[sighting_view(sighting)])
        for m in matches:
            out.extend(self._hit(session, sighting, m, now))
        return out

    def record_violation(
        self, session: Session, device: str, body: ViolationBody, now: datetime
    ) -> None:
        """Store a red-light crossing and its evidence."""
        session.add(
            Violation(
                violation_id=body.violation_id,
                device=device,
                plate=body.text,
                junction=body.junction,
                signal_group=body.signal_group,
                red_since=body.red_since,
                crossed_at=body.crossed_at,
                received_at=now,
                evidence=self._keep(device, body.evidence),
            )
        )
        logger.info("Red-light violation by %s at %s", body.text, body.junction)

    def _hit(
        self, session: Session, sighting: Sighting, match: Match, now: datetime
    ) -> Outbound:
        hit = Hit(
            sighting_id=int(sighting.id or 0),
            suspect_id=match.listed.suspect_id,
            read=sighting.plate,
            listed=match.listed.plate,
            category=match.listed.category,
            kind=match.kind,
            score=match.score,
            state="open",
            created_at=now,
        )
        session.add(hit)
        session.flush()
        out = Outbound()
        if match.kind == "exact":
            out.extend(self._raise(session, hit, sighting, now))
        out.live.append(hit_view(hit))
        logger.warning(
            "Plate %s %s hit on %s (%s) at %s",
            sighting.plate,
            match.kind,
            match.listed.plate,
            match.listed.category,
            sighting.device,
        )
        return out

    def _raise(
        self, session: Session, hit: Hit, sighting: Sighting, now: datetime
    ) -> Outbound:
        """An alarm on the console; alerts to officers near the camera.

        A repeat of an open alarm's plate at its camera within the window
        updates that alarm instead (count, last seen; no new alerts).
        """
        repeat = self._repeat_of(session, hit, sighting)
        if repeat is not None:
            repeat.repeats += 1
            latest: dict[str, Any] = {"count": int(repeat.detail.get("count", 1)) + 1}
            if as_utc(sighting.seen_at).isoformat() > str(
                repeat.detail.get("last_seen", "")
            ):
                latest |= {
                    "last_seen": as_utc(sighting.seen_at).isoformat(),
                    "read": hit.read,
                    "hit": hit.id,
                    "sighting": sighting.id,
                    "images": sighting.evidence.get("images", {}),
                }
            repeat.detail = {**repeat.detail, **latest}
            session.add(repeat)
            session.flush()
            hit.alarm_id = repeat.id
            return Outbound(live=[alarm_view(repeat)])
        alarm = Alarm(
            key=f"plate:{hit.id}",
            kind="plate",
            device=sighting.device,
            state="raised",
            lat=sighting.lat,
            lon=sighting.lon,
            raised_at=as_utc(sighting.seen_at),
            received_at=now,
            detail={
                "plate": hit.listed,
                "read": hit.read,
                "category": hit.category,
                "category_name": CATEGORIES.get(hit.category, hit.category),
                "hit": hit.id,
                "sighting": sighting.id,
                "images": sighting.evidence.get("images", {}),
                "count": 1,
                "first_seen": as_utc(sighting.seen_at).isoformat(),
                "last_seen": as_utc(sighting.seen_at).isoformat(),
            },
        )
        session.add(alarm)
        session.flush()
        hit.alarm_id = alarm.id
        out = Outbound()
        if (
            hit.category in self.rules.handheld_categories
            and alarm.lat is not None
            and alarm.lon is not None
        ):
            out.extend(self._alert_nearby(session, alarm, hit, now))
        out.live.append(alarm_view(alarm))
        return out

    def _repeat_of(
        self, session: Session, hit: Hit, sighting: Sighting
    ) -> Alarm | None:
        """The open plate alarm this hit repeats, if any (same plate and camera).

        A repeat is one whose last sighting is at most ``repeat_window_s``
        before this one; a read older than the last one (a backlog) counts
        too while it lies within the window.
        """
        window = self.rules.repeat_window_s
        if window <= 0:
            return None
        seen = as_utc(sighting.seen_at)
        rows = session.exec(
            select(Alarm)
            .where(
                Alarm.kind == "plate",
                Alarm.device == sighting.device,
                col(Alarm.state).in_(OPEN),
            )
            .order_by(col(Alarm.id).desc())
            .limit(50)
        ).all()
        for alarm in rows:
            if alarm.detail.get("plate") != hit.listed:
                continue
            last = alarm.detail.get("last_seen")
            last_seen = (
                as_utc(datetime.fromisoformat(last))
                if isinstance(last, str)
                else as_utc(alarm.raised_at)
            )
            if abs((seen - last_seen).total_seconds()) <= window:
                return alarm
        return None

    def _alert_nearby(
        self, session: Session, alarm: Alarm, hit: Hit, now: datetime
    ) -> Outbound:
        assert alarm.lat is not None  # noqa: S101 - checked by the caller
        assert alarm.lon is not None  # noqa: S101
        since = now - timedelta(seconds=self.rules.fresh_s)
        rows = session.exec(
            select(Officer.device, Officer.lat, Officer.lon).where(
                col(Officer.fix_ts) >= since, col(Officer.lat).is_not(None)
            )
        ).all()
        people = [
            Located(d, la, lo)
            for d, la, lo in rows
            if la is not None and lo is not None
        ]
        nearby = nearest_within(
            alarm.lat, alarm.lon, people, radius_m=self.rules.radius_m
        )
        out = Outbound()
        name = CATEGORIES.get(hit.category, hit.category)
        for n in nearby:
            args = AlertArgs(
                alert_id=f"plate:{hit.id}",
                kind="plate",
                text=(
                    f"布控车辆 {hit.listed}（{name}）经过 {alarm.device}，"
                    f"距您 {n.distance_m:.0f} 米"
                ),
                lat=alarm.lat,
                lon=alarm.lon,
                distance_m=n.distance_m,
                about=alarm.device,
                raised_at=alarm.raised_at,
            )
            out.commands.append(("alert", n.device, to_body(args)))
        alarm.alerted = [
            {"device": n.device, "distance_m": n.distance_m} for n in nearby
        ]
        return out

    # -- a person decides a possible hit -------------------------------------------
    def decide(
        self, session: Session, hit_id: int, *, confirm: bool, by: str
    ) -> tuple[Hit, Outbound]:
        """Confirm (raise the alarm) or reject a possible hit.

        Raises:
            NotFoundError: no such hit.
            ConflictError: it is not an open possible hit.
        """
        hit = session.get(Hit, hit_id)
        if hit is None:
            raise NotFoundError(f"no hit {hit_id}")
        if hit.state != "open" or hit.kind != "possible":
            raise ConflictError(
                f"hit {hit_id} is a {hit.state} {hit.kind} hit; "
                "only an open possible hit can be confirmed or rejected"
            )
        now = self.clock.now()
        hit.state = "confirmed" if confirm else "rejected"
        hit.decided_by, hit.decided_at = by, now
        out = Outbound()
        if confirm:
            sighting = session.get(Sighting, hit.sighting_id)
            if sighting is None:
                raise NotFoundError(f"the sighting of hit {hit_id} was deleted")
            out.extend(self._raise(session, hit, sighting, now))
        out.live.append(hit_view(hit))
        out.audit.append(
            {
                "actor": by,
                "action": f"plate.hit.{hit.state}",
                "target": hit.listed,
                "detail": {"hit": hit.id, "read": hit.read, "score": hit.score},
            }
        )
        session.commit()
        session.refresh(hit)
        return hit, out

    # -- after the commit, and the timer ------------------------------------------
    def tick(self, engine: sa.Engine) -> None:
        """Every minute: delete reads that hit nothing once retention ends."""
        if self.clock.monotonic() < self._next_tick:
            return
        self._next_tick = self.clock.monotonic() + 60.0
        with Session(engine) as session:
            purged = self.purge(session)
        if purged:
            logger.info("Deleted %d plate reads past retention", purged)

    def purge(self, session: Session) -> int:
        """Delete sightings without hits older than the retention period."""
        cutoff = self.clock.now() - timedelta(days=self.rules.retention_days)
        old = session.exec(
            select(Sighting).where(
                col(Sighting.hit).is_(False), Sighting.seen_at < cutoff
            )
        ).all()
        for s in old:
            for digest in s.evidence.get("images", {}).values():
                path = self.evidence_dir / f"{digest}.jpg"
                path.unlink(missing_ok=True)
            session.delete(s)
        session.commit()
        return len(old)
