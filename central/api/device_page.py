"""One device as the fleet operator inspects it: the console's device page.

``GET /api/v1/devices/{id}/overview`` gathers what the page shows in one
answer: the device (version, health, presence, configuration versions and
drift), its certificates (serial, validity, revocation), its OTA history
(each rollout that took it, the node's last report and reason) and, where
the operator may read its events, the newest events and how many came in
each of the last 24 hours (the page's chart) and its telemetry of the day
as series of numbers (each numeric field over time); for a loop detector also its
loops: the newest 1-minute bin per loop, 24 hourly counts and mean
occupancy per loop, and its faults of the day. The desired configuration and
commands keep their own routes in :mod:`central.api.devices`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter
from sqlmodel import col, select

from central.api.deps import ServicesDep, SessionDep, may
from central.api.devices import Name, Reader, _device
from central.fleet import registry
from central.models import Certificate, Event, as_utc
from central.ota.models import RolloutNode, RolloutRow
from central.signals.history import detector_day

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
RECENT = 30
HOURS = 24
TELEMETRY_POINTS = 1440  # a message a minute for a day


@router.get("/{device_id}/overview")
def device_overview(
    device_id: Name, services: ServicesDep, session: SessionDep, who: Reader
) -> dict[str, Any]:
    """The device, its certificates, OTA history and (if allowed) recent events."""
    device = _device(services, session, who, device_id, "read")
    certs = session.exec(
        select(Certificate)
        .where(Certificate.device_id == device_id)
        .order_by(col(Certificate.issued_at).desc())
        .limit(10)
    ).all()
    history = session.exec(
        select(RolloutNode, RolloutRow)
        .join(RolloutRow, col(RolloutRow.id) == col(RolloutNode.rollout_id))
        .where(RolloutNode.device == device_id)
        .order_by(col(RolloutNode.rollout_id).desc())
        .limit(20)
    ).all()
    answer: dict[str, Any] = {
        "device": registry.view(device),
        "certificates": [
            {
                "serial": c.serial,
                "issued_at": as_utc(c.issued_at).isoformat(),
                "not_after": as_utc(c.not_after).isoformat(),
                "revoked_at": None
                if c.revoked_at is None
                else as_utc(c.revoked_at).isoformat(),
            }
            for c in certs
        ],
        "ota": [
            {
                "rollout": r.id,
                "release": r.release,
                "version": r.version,
                "rollout_state": r.state,
                "state": n.state,
                "fw_state": n.fw_state,
                "reason": n.reason,
                "attempts": n.attempts,
                "updated_at": None
                if n.updated_at is None
                else as_utc(n.updated_at).isoformat(),
            }
            for n, r in history
        ],
        "events": None,
        "hourly": None,
    }
    if not may(
        services, who, site=device.site, obj=f"devices/{device.kind}", act="events"
    ):
        return answer
    recent = session.exec(
        select(Event)
        .where(Event.device == device_id)
        .order_by(col(Event.seq).desc())
        .limit(RECENT)
    ).all()
    answer["events"] = [
        {
            "seq": e.seq,
            "type": e.type,
            "ts": as_utc(e.ts).isoformat(),
            "received_at": as_utc(e.received_at).isoformat(),
            "body": e.body,
        }
        for e in recent
    ]
    now = services.clock.now()
    since = now - timedelta(hours=HOURS)
    stamps = session.exec(
        select(Event.received_at)
        .where(Event.device == device_id, col(Event.received_at) >= since)
        .limit(100_000)
    ).all()
    counts = [0] * HOURS
    for at in stamps:
        slot = int((as_utc(at) - since).total_seconds() // 3600)
        counts[min(max(slot, 0), HOURS - 1)] += 1
    answer["hourly"] = {"since": since.isoformat(), "counts": counts}
    answer["telemetry"] = _telemetry(session, device_id, since=since)
    if device.kind == "loop_detector":
        answer["detector"] = detector_day(session, device_id, since=since, hours=HOURS)
    return answer


def _telemetry(
    session: SessionDep, device_id: str, *, since: datetime
) -> dict[str, Any]:
    """The day's telemetry as series: each numeric field, its (time, value) points.

    A node's ``telemetry`` messages (stored as events of that type) carry
    what it measures (a kiosk: sessions, outbox depth; true/false states
    such as its link count as 1/0). Text fields are left to the event list.
    At most the newest :data:`TELEMETRY_POINTS` messages are read.
    """
    rows = session.exec(
        select(Event.ts, Event.body)
        .where(
            Event.device == device_id,
            Event.type == "telemetry",
            col(Event.ts) >= since,
        )
        .order_by(col(Event.seq).desc())
        .limit(TELEMETRY_POINTS)
    ).all()
    series: dict[str, list[tuple[str, float]]] = {}
    for ts, body in reversed(rows):
        at = as_utc(ts).isoformat()
        for key, value in body.items():
            if isinstance(value, bool | int | float):
                series.setdefault(str(key), []).append((at, float(value)))
    return {"since": since.isoformat(), "series": series}
