"""Origin–destination matrices between cameras, for planners and SUMO (pure).

A vehicle's keyed plate hash (:mod:`central.guidance.reid`) seen at
several cameras, each sighting within ``max_gap_s`` of the one before, is
one journey from the first camera to the last; it counts in the hour it
began. Sightings at one camera only, and repeats at the same camera, are
no journey. The matrix counts *read* vehicles: cameras miss some, so a
planner scales by the cameras' read rates (``scale``) before feeding it to
SUMO. :func:`to_tazrelations` writes SUMO's ``tazRelation`` format, which
``od2trips --tazrelation-files`` reads with a TAZ file that names each
camera's edges.

Storage, the hour's timing and the HTTP answer are the service's and the
API's.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from xml.sax.saxutils import quoteattr

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from central.guidance.reid import Passage


def hour_of(at: datetime) -> datetime:
    """The start of the hour ``at`` falls in."""
    return at.replace(minute=0, second=0, microsecond=0)


def journeys(
    passages: Iterable[Passage], *, max_gap_s: float
) -> list[tuple[str, str, datetime]]:
    """Each vehicle's journeys: (first camera, last camera, when it began).

    Args:
        passages: sightings of any cameras, any order.
        max_gap_s: the longest time between two sightings of one journey.

    Returns:
        Journeys between two different cameras, ordered by their start.
    """
    by_hash: dict[str, list[Passage]] = {}
    for p in passages:
        by_hash.setdefault(p.plate_hash, []).append(p)
    out: list[tuple[str, str, datetime]] = []
    gap = timedelta(seconds=max_gap_s)
    for seen in by_hash.values():
        seen.sort(key=lambda p: p.at)
        first = last = seen[0]
        for p in seen[1:]:
            if p.at - last.at > gap:
                if first.camera != last.camera:
                    out.append((first.camera, last.camera, first.at))
                first = p
            last = p
        if first.camera != last.camera:
            out.append((first.camera, last.camera, first.at))
    out.sort(key=lambda j: j[2])
    return out


def od_counts(
    passages: Iterable[Passage], *, hour: datetime, max_gap_s: float
) -> Counter[tuple[str, str]]:
    """Journeys that began in ``hour``, by (origin camera, destination camera)."""
    end = hour + timedelta(hours=1)
    return Counter(
        (o, d)
        for o, d, at in journeys(passages, max_gap_s=max_gap_s)
        if hour <= at < end
    )


def to_tazrelations(
    counts: Mapping[tuple[str, str], float],
    *,
    begin_s: float,
    end_s: float,
    interval_id: str,
    scale: float = 1.0,
) -> str:
    """The matrix as SUMO ``tazRelation`` XML (TAZ ids are the camera ids).

    Args:
        counts: trips by (origin, destination).
        begin_s: the interval's start, in the simulation's seconds.
        end_s: its end.
        interval_id: a name for the interval (the hour).
        scale: multiplies every count (1 / read rate, to count every vehicle).

    Raises:
        ValueError: an empty interval or a scale below 1.
    """
    if end_s <= begin_s or scale < 1:
        raise ValueError(
            f"expected begin < end and scale >= 1, got {begin_s}, {end_s}, {scale}"
        )
    head = f'<interval id={quoteattr(interval_id)} begin="{begin_s:g}" end="{end_s:g}">'
    lines = ["<data>", f"    {head}"]
    for (o, d), n in sorted(counts.items()):
        lines.append(
            f"        <tazRelation from={quoteattr(o)} to={quoteattr(d)} "
            f'count="{round(n * scale, 2):g}"/>'
        )
    lines += ["    </interval>", "</data>", ""]
    return "\n".join(lines)
