"""What the traffic centre's charts read: a detector's day and a junction's plans.

Queries only, over what central already stores: the detector nodes'
1-minute ``detector`` bins and ``fault`` events (kept by ingest like every
event) and the plans (:class:`~central.signals.models.PlanRow`) with the
time each was accepted or applied. Nothing is written here, and no timing
is decided: :mod:`central.signals.service` and the cabinets do that. The
console's device page (one loop detector) and the junction view of the
traffic centre (all of a junction's detectors, its cycle and splits) both
read from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from central.models import Event, as_utc
from central.signals.models import PlanRow

if TYPE_CHECKING:
    from datetime import datetime

MINUTE_S = 60  # the bins the charts read; the 15-minute ones are sums of them
MAX_ROWS = 50_000  # a day of 1-minute bins is 1,440 a detector
RUNNING = ("accepted", "applied")


def detector_day(
    session: Session, device: str, *, since: datetime, hours: int = 24
) -> dict[str, Any]:
    """One detector's loops over ``hours`` from ``since``: counts, occupancy, faults.

    Args:
        session: A database session.
        device: The detector node's id.
        since: The start of the first hourly slot.
        hours: How many hourly slots.

    Returns:
        ``latest``: the newest 1-minute bin's lanes as the node sent them
        (count, flow_vph, occupancy_pct, speed_kmh, headway_s); ``lanes``:
        per loop, ``counts`` (vehicles each hour) and ``occupancy_pct`` (the
        mean of the hour's minutes, None for an hour without data);
        ``faults``: each fault's last change (code, detail, active, at),
        newest first.
    """
    rows = session.exec(
        select(Event.type, Event.ts, Event.body)
        .where(
            Event.device == device,
            col(Event.type).in_(("detector", "fault")),
            col(Event.ts) >= since,
        )
        .order_by(col(Event.seq))
        .limit(MAX_ROWS)
    ).all()
    counts: dict[int, list[int]] = {}
    occupied: dict[int, list[float]] = {}
    minutes: dict[int, list[int]] = {}
    latest: list[dict[str, Any]] = []
    faults: dict[str, dict[str, Any]] = {}
    for kind, ts, body in rows:
        if kind == "fault":
            code = f"{body.get('code', '')} {body.get('detail', '')}".strip()
            faults[code] = {
                "code": body.get("code", ""),
                "detail": body.get("detail", ""),
                "active": bool(body.get("active")),
                "at": as_utc(ts).isoformat(),
            }
            continue
        if int(body.get("seconds", MINUTE_S)) != MINUTE_S:
            continue
        slot = min(max(int((as_utc(ts) - since).total_seconds() // 3600), 0), hours - 1)
        lanes = [lane for lane in body.get("lanes", []) if isinstance(lane, dict)]
        latest = lanes or latest
        for lane in lanes:
            n = int(lane.get("lane", 0))
            counts.setdefault(n, [0] * hours)[slot] += int(lane.get("count", 0))
            occupied.setdefault(n, [0.0] * hours)[slot] += float(
                lane.get("occupancy_pct", 0.0)
            )
            minutes.setdefault(n, [0] * hours)[slot] += 1
    return {
        "latest": latest,
        "lanes": [
            {
                "lane": n,
                "counts": counts[n],
                "occupancy_pct": [
                    round(occupied[n][h] / minutes[n][h], 1) if minutes[n][h] else None
                    for h in range(hours)
                ],
            }
            for n in sorted(counts)
        ],
        "faults": sorted(faults.values(), key=lambda f: f["at"], reverse=True),
    }


def plan_history(
    session: Session, junction: str, *, since: datetime
) -> list[dict[str, Any]]:
    """The plans a junction's cabinet ran from ``since``: cycle and splits over time.

    A plan runs from when the cabinet accepted or applied it until the next
    one did; the one running at ``since`` is included (it starts before).

    Args:
        session: A database session.
        junction: The junction's (its cabinet's) id.
        since: The start of the period.

    Returns:
        Oldest first: ``version``, ``method``, ``from`` (ISO time), ``cycle``
        (s), ``greens`` (s per stage), ``offset`` and ``actuated`` (the greens
        are then maxima).
    """
    rows = session.exec(
        select(PlanRow)
        .where(PlanRow.junction == junction, col(PlanRow.state).in_(RUNNING))
        .order_by(col(PlanRow.updated_at), col(PlanRow.id))
    ).all()
    started = [r for r in rows if as_utc(r.updated_at) >= as_utc(since)]
    before = [r for r in rows if as_utc(r.updated_at) < as_utc(since)]
    return [
        {
            "version": r.version,
            "method": r.method,
            "from": as_utc(r.updated_at).isoformat(),
            "cycle": float(r.body.get("cycle", 0)),
            "greens": [float(g) for g in r.body.get("greens", [])],
            "offset": float(r.body.get("offset", 0)),
            "actuated": bool(r.body.get("actuated")),
        }
        for r in [*before[-1:], *started]
    ]
