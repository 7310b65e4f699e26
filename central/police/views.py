"""How an alarm looks: to the console and to the officer on the handheld.

Values only: an alarm as the API, the console and the live stream show it,
and the texts a handheld shows for each phase of its SOS. The thresholds
are :mod:`central.police.rules`; what a batch sends is
:mod:`central.messaging.outbound`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from central.models import as_utc

if TYPE_CHECKING:
    from datetime import datetime

    from central.police.models import Alarm

SOS_TEXT = {
    "raised": "求救已送达指挥中心",
    "acknowledged": "指挥中心已确认，救援正在路上",
    "assigned": "已派警力赶来",
    "resolved": "求救已处置完毕",
    "false_alarm": "已标记为误报",
    "cancelled": "求救已取消",
}


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
