"""Triage of one incoming MQTT message: what it is, or why it is refused.

Pure: bytes, topic and the receiver's ``now`` in; a :class:`Accepted` or
:class:`Rejected` value out. The ingest worker does the I/O around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from edge.protocol import PayloadError, check_clock, check_topic, decode
from edge.protocol.messages import StateBody, parse_body

if TYPE_CHECKING:
    from edge.protocol.envelope import Envelope


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message that follows the contract."""

    channel: str
    envelope: Envelope
    state: StateBody | None = None
    skew: str = ""  # "ts_future" / "ts_past": the node's clock was off


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message dropped, with a metric-friendly reason and a readable detail."""

    reason: str
    detail: str


_NUL = b"\\u0000"  # JSON's escape of NUL (a raw one is not JSON)


def triage(
    topic: str,
    payload: bytes,
    *,
    now: datetime,
    max_bytes: int,
    max_ahead: timedelta = timedelta(minutes=5),
    max_behind: timedelta = timedelta(days=30),
) -> Accepted | Rejected:
    """Decode and check one message.

    State messages skip the clock check: a last will carries the time of the
    connection it belongs to, which may be long ago. An event from a node
    whose clock is far off (a Pi that booted without NTP, a broken RTC) is
    still the node's event: it is accepted with ``ts`` set to ``now`` and
    ``skew`` saying which way the clock was off — never dropped. A NUL
    character anywhere is refused (``nul``): PostgreSQL stores none in text,
    and a batch whose commit fails is retried, blocking all after it.
    """
    if _NUL in payload:  # PostgreSQL stores no NUL in text: the commit would fail
        return Rejected(
            reason="nul",
            detail="expected no NUL character (\\u0000) in any string, got one",
        )
    try:
        env = decode(payload, max_bytes=max_bytes)
        parsed = check_topic(topic, env)
        if parsed.channel == "state":
            return Accepted(
                channel="state", envelope=env, state=parse_body(StateBody, env.body)
            )
    except PayloadError as exc:
        return Rejected(reason=exc.reason, detail=str(exc))
    try:
        check_clock(env, now=now, max_ahead=max_ahead, max_behind=max_behind)
    except PayloadError as exc:
        stamped = env.model_copy(update={"ts": now})
        return Accepted(channel=parsed.channel, envelope=stamped, skew=exc.reason)
    return Accepted(channel=parsed.channel, envelope=env)
