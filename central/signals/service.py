"""The traffic centre's shell around the engine: flows in, signed plans out.

Flows come from the detector nodes' ``detector`` events (1-minute bins,
stored by ingest like every event); each junction maps its detectors'
lanes to its stages. Plans are computed (Webster, the delay-minimising
fixed plan, or a corridor's green wave), kept with a version, pushed to
the cabinet as central's signed ``plan`` command and followed by the
cabinet's ``plan`` events (accepted, applied, refused with its rule,
failed). Rolling back pushes the plan that ran before as a new version.
Junctions marked adaptive run vehicle-actuated (max-pressure in the
controller) under maximum greens re-timed once a cycle from the last
minutes of flows, within a bound.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from central.errors import ConflictError, InvalidError, NotFoundError
from central.messaging.outbound import Outbound, Sender
from central.models import Event, as_utc
from central.signals import engine
from central.signals.models import JunctionRow, PlanRow

if TYPE_CHECKING:
    from collections.abc import Callable

    import sqlalchemy as sa

    from central.messaging.link import CentralLink
    from edge.clock import Clock

logger = logging.getLogger(__name__)

METHODS = ("webster", "optimise")
MIN_DATA_S = 120.0  # counts an adaptive junction waits for before its first plan
STATES = {"accepted", "applied", "refused", "failed"}
MAX_INTERGREENS = 256  # pairs of a junction's matrix kept with a plan


def _close(new: dict[str, Any], old: dict[str, Any], *, within_s: float = 2.0) -> bool:
    """Two plans that differ by less than ``within_s`` in cycle and every green."""
    return abs(float(new["cycle"]) - float(old["cycle"])) < within_s and all(
        abs(float(a) - float(b)) < within_s
        for a, b in zip(new["greens"], old["greens"], strict=False)
    )


def permissive(junction: JunctionRow) -> frozenset[int]:
    """Stages whose lanes all also turn permissively in another stage.

    A lane's detector entry says so with a fourth element, true
    (``[stage, saturation, approach, permissive]``): a protected left that
    also turns in the gaps of its through stage.
    """
    lanes: dict[int, list[bool]] = {}
    for spec in (s for card in junction.detectors.values() for s in card.values()):
        lanes.setdefault(int(spec[0]), []).append(len(spec) > 3 and bool(spec[3]))  # noqa: PLR2004
    return frozenset(stage for stage, flags in lanes.items() if all(flags))


class SignalService:
    """Junctions, plans, pushes, and the adaptive timer."""

    types = frozenset({"plan"})

    def __init__(
        self,
        *,
        clock: Clock,
        link: CentralLink | None = None,
        sender: Sender | None = None,
        limits: engine.Limits | None = None,
        window_s: float = 900.0,
        push_timeout_s: float = 10.0,
    ) -> None:
        """Build the service over its collaborators.

        Args:
            clock: the time of plans and of the adaptive timer.
            link: the broker link a push goes out on (and, for a person's
                push, whose reply it waits for); none: no cabinet is told.
            sender: console updates and audit records after a commit; none
                sends nothing.
            limits: the bounds every computed plan keeps.
            window_s: how many seconds of flows a computed plan reads.
            push_timeout_s: how long a person's push waits for the cabinet.
        """
        self.clock = clock
        self.push_timeout_s = push_timeout_s
        self.link = link
        self.sender = sender or Sender(clock=clock)
        self.limits = limits or engine.Limits()
        self.window_s = window_s
        self._next_adapt: dict[str, float] = {}
        self._first_data: dict[str, float] = {}

    # -- flows ------------------------------------------------------------------------
    def flows(
        self, session: Session, junction: JunctionRow, *, window_s: float | None = None
    ) -> list[list[engine.Group]]:
        """Each stage's lane groups (flow veh/h, saturation veh/h) from recent bins."""
        window = window_s or self.window_s
        since = self.clock.now() - timedelta(seconds=window)
        counts: dict[tuple[str, str], int] = {}
        seconds: dict[str, float] = {}
        rows = session.exec(
            select(Event).where(
                col(Event.device).in_(list(junction.detectors)),
                Event.type == "detector",
                Event.ts >= since,
            )
        ).all()
        for row in rows:
            seconds[row.device] = seconds.get(row.device, 0.0) + float(
                row.body.get("seconds", 60)
            )
            for lane in row.body.get("lanes", []):
                key = (row.device, str(lane.get("lane")))
                counts[key] = counts.get(key, 0) + int(lane.get("count", 0))
        # lanes of one approach that feed one stage form one group: drivers
        # spread over them before the stop line, so their sum is what counts
        groups: dict[tuple[int, str], list[float]] = {}  # (stage, group) -> q, s
        for device, lanes in junction.detectors.items():
            for lane, spec in lanes.items():
                stage, sat = int(spec[0]), float(spec[1])
                name = str(spec[2]) if len(spec) > 2 else f"{device}/{lane}"  # noqa: PLR2004
                span = seconds.get(device, 0.0)
                flow = counts.get((device, lane), 0) * 3600 / span if span else 0.0
                entry = groups.setdefault((stage, name), [0.0, 0.0])
                entry[0] += flow
                entry[1] += sat
        stages: list[list[engine.Group]] = [[] for _ in range(junction.stages)]
        for (stage, _group), (flow, sat) in groups.items():
            if 0 <= stage < junction.stages:
                stages[stage].append((flow, sat))
        return stages

    # -- plans -----------------------------------------------------------------------
    def _version(self, session: Session, junction: str) -> str:
        n = len(
            session.exec(select(PlanRow.id).where(PlanRow.junction == junction)).all()
        )
        return f"{junction}-{n + 1}"

    def _row(
        self,
        session: Session,
        junction: str,
        timing: engine.Timing,
        method: str,
        by: str,
    ) -> PlanRow:
        now = self.clock.now()
        row = PlanRow(
            junction=junction,
            version=self._version(session, junction),
            body=timing.as_plan(),
            method=method,
            created_by=by,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return row

    def junction(self, session: Session, junction_id: str) -> JunctionRow:
        """A junction by its cabinet's id.

        Raises:
            NotFoundError: no such junction.
        """
        row = session.get(JunctionRow, junction_id)
        if row is None:
            raise NotFoundError(f"no junction {junction_id!r}")
        return row

    def compute(
        self, session: Session, junction_id: str, method: str, *, by: str
    ) -> PlanRow:
        """A proposed plan for one junction from its measured flows.

        Raises:
            NotFoundError: no such junction.
            InvalidError: an unknown method.
        """
        if method not in METHODS:
            raise InvalidError(f"expected a method of {METHODS}, got {method!r}")
        j = self.junction(session, junction_id)
        stages = self.flows(session, j)
        limits = self._limits(session, j.id)
        timing = (
            engine.webster(stages, limits)
            if method == "webster"
            else engine.optimise(stages, limits, permissive(j))
        )
        row = self._row(session, j.id, timing, method, by)
        session.commit()
        return row

    def _limits(self, session: Session, junction_id: str) -> engine.Limits:
        """The limits, with each change as long as the cabinet's intergreens ask.

        The cabinet reports its intergreen matrix (from its geometry) with
        every plan it accepts or refuses; a plan computed after that gives
        every change at least the longest intergreen, so the cabinet takes it.
        """
        rows = session.exec(
            select(PlanRow)
            .where(PlanRow.junction == junction_id)
            .order_by(col(PlanRow.id).desc())
            .limit(50)
        ).all()
        for row in rows:
            shown = row.body.get("intergreens")
            if isinstance(shown, dict) and shown:
                need = max(float(v) for v in shown.values())
                change = self.limits.yellow + self.limits.all_red
                if need > change:
                    # whole seconds: the engine's greens and cycles are
                    all_red = float(math.ceil(need - self.limits.yellow))
                    return dataclasses.replace(self.limits, all_red=all_red)
                break
        return self.limits

    def compute_corridor(
        self, session: Session, corridor: str, *, by: str
    ) -> list[PlanRow]:
        """Proposed plans for a corridor: a common cycle and a two-way green wave.

        Raises:
            NotFoundError: no junction on that corridor.
        """
        members = session.exec(
            select(JunctionRow)
            .where(JunctionRow.corridor == corridor)
            .order_by(col(JunctionRow.position_m))
        ).all()
        if not members:
            raise NotFoundError(f"no junction on corridor {corridor!r}")
        flows = [self.flows(session, j) for j in members]
        # the common cycle as the through traffic sets it (the wave's); the
        # lefts' permissive share only re-fits the splits within it
        cycle = max(engine.optimise(f, self.limits).cycle for f in flows)
        timings = [
            engine.retime(
                engine.Timing(cycle, tuple([self.limits.min_green] * j.stages)),
                f,
                self.limits,
                max_step_s=cycle,
                fixed_cycle=True,
                permissive=permissive(j),
            )
            for j, f in zip(members, flows, strict=True)
        ]
        offsets = engine.green_wave(
            [j.position_m for j in members],
            [t.greens[0] for t in timings],
            cycle,
            speed_mps=members[0].speed_mps,
        )
        rows = [
            self._row(
                session,
                j.id,
                engine.Timing(
                    t.cycle,
                    t.greens,
                    offset % cycle,
                    t.yellow,
                    t.all_red,
                    coordinated=True,
                ),
                "green_wave",
                by,
            )
            for j, t, offset in zip(members, timings, offsets, strict=True)
        ]
        session.commit()
        return rows

    def push(self, session: Session, plan_id: int, *, by: str) -> PlanRow:
        """Send a plan to its cabinet (signed) and record the answer.

        Raises:
            NotFoundError: no such plan.
            ConflictError: no link to the cabinets here.
        """
        row = session.get(PlanRow, plan_id)
        if row is None:
            raise NotFoundError(f"no plan {plan_id}")
        if self.link is None:
            raise ConflictError("no link to the cabinets in this process")
        reply = self.link.command(
            row.junction,
            "plan",
            {"version": row.version, "plan": row.body},
            timeout=self.push_timeout_s,
        )
        session.refresh(row)  # the cabinet's events may have moved it on already
        if row.state in ("proposed", "pushed"):
            row.state = "accepted" if reply.ok else "refused"
            row.reason = reply.error[:300]
            row.updated_at = self.clock.now()
        session.commit()
        self.sender.deliver(
            Outbound(
                live=[{"type": "signal_plan", **self.view(row)}],
                audit=[
                    {
                        "actor": by,
                        "action": "signal.push",
                        "target": row.junction,
                        "detail": {"version": row.version, "state": row.state},
                    }
                ],
            )
        )
        return row

    def rollback(self, session: Session, junction_id: str, *, by: str) -> PlanRow:
        """Push again the plan that ran before the current one.

        Raises:
            ConflictError: nothing to go back to.
        """
        ran = session.exec(
            select(PlanRow)
            .where(
                PlanRow.junction == junction_id,
                col(PlanRow.state).in_(["accepted", "applied"]),
            )
            .order_by(col(PlanRow.id).desc())
        ).all()
        if len(ran) < 2:  # noqa: PLR2004
            raise ConflictError(f"{junction_id} has no earlier plan to go back to")
        previous = ran[1]
        timing = engine.Timing(
            float(previous.body["cycle"]),
            tuple(float(g) for g in previous.body["greens"]),
            float(previous.body.get("offset", 0)),
            float(previous.body.get("yellow", 3)),
            float(previous.body.get("all_red", 1)),
            bool(previous.body.get("coordinated", False)),
        )
        row = self._row(session, junction_id, timing, "rollback", by)
        session.commit()
        return self.push(session, int(row.id or 0), by=by)

    @staticmethod
    def view(row: PlanRow) -> dict[str, Any]:
        """A plan as the console shows it."""
        return {
            "id": row.id,
            "junction": row.junction,
            "version": row.version,
            "method": row.method,
            "state": row.state,
            "reason": row.reason,
            "plan": row.body,
            "created_by": row.created_by,
            "created_at": as_utc(row.created_at).isoformat(),
        }

    # -- the cabinets' reports ----------------------------------------------
    def take(
        self, session: Session, events: list[dict[str, Any]], now: datetime
    ) -> Callable[[], None]:
        """Record what each cabinet did with a plan."""
        del now
        changed = []
        for event in events:
            body = event["body"]
            state = str(body.get("state", ""))
            row = session.exec(
                select(PlanRow).where(PlanRow.version == str(body.get("version", "")))
            ).first()
            if row is None or state not in STATES or row.junction != event["device"]:
                continue
            if state == "accepted" and row.state == "applied":
                continue
            row.state = state
            row.reason = str(body.get("rule") or body.get("detail") or "")[:300]
            shown = body.get("intergreens")
            if state in {"accepted", "refused"} and isinstance(shown, dict) and shown:
                # the cabinet's intergreen matrix from its geometry: shown
                # with the plan (pair "Wl>Nl" → s), bounded
                row.body = {
                    **row.body,
                    "intergreens": {
                        str(k)[:16]: float(v)
                        for k, v in list(shown.items())[:MAX_INTERGREENS]
                        if isinstance(v, int | float)
                    },
                }
            row.updated_at = self.clock.now()
            changed.append({"type": "signal_plan", **self.view(row)})
        return lambda: self.sender.deliver(Outbound(live=changed))

    def tick(self, engine_: sa.Engine) -> None:
        """Adaptive junctions: re-time once a cycle, within the bound."""
        now = self.clock.monotonic()
        with Session(engine_) as session:
            for j in session.exec(
                select(JunctionRow).where(col(JunctionRow.adaptive))
            ).all():
                if now < self._next_adapt.get(j.id, 0.0):
                    continue
                self._adapt(session, j, now)

    def _current(self, session: Session, junction: str) -> PlanRow | None:
        return session.exec(
            select(PlanRow)
            .where(
                PlanRow.junction == junction,
                col(PlanRow.state).in_(["pushed", "accepted", "applied"]),
            )
            .order_by(col(PlanRow.id).desc())
        ).first()

    def _adapt(self, session: Session, j: JunctionRow, now: float) -> None:
        """Re-time one junction's maxima.

        Nothing happens until the detectors have counted for a while (the
        cabinet's time-of-day plan runs meanwhile). Then the junction runs
        vehicle-actuated: its controller gives each next green by
        max-pressure over its own loops, within maximum greens that central
        re-times here from the last minutes of flows, by at most
        ``engine.retime``'s step a cycle. An actuated junction on a corridor
        runs the same way (on the benchmark's arterial it beats the best
        green wave); a coordinated green wave is the operator's to push.
        """
        stages = self.flows(session, j, window_s=600)
        if not any(q for stage in stages for q, _ in stage):
            self._next_adapt[j.id] = now + 60
            return
        first = self._first_data.setdefault(j.id, now)
        if now - first < MIN_DATA_S:
            self._next_adapt[j.id] = first + MIN_DATA_S
            return
        current = self._current(session, j.id)
        best = engine.optimise(stages, self.limits)
        target = engine.Timing(
            best.cycle, best.greens, 0.0, best.yellow, best.all_red, actuated=True
        )
        if current is None or not current.body.get("actuated"):
            timing = target
        else:
            body = current.body
            timing = engine.retime(
                engine.Timing(
                    float(body["cycle"]),
                    tuple(float(g) for g in body["greens"]),
                    actuated=True,
                ),
                stages,
                self.limits,
                target=target,
            )
        self._next_adapt[j.id] = now + timing.cycle
        running = current.body if current is not None else {}
        if running.get("actuated") and _close(timing.as_plan(), running):
            return  # not worth a transition
        row = self._row(session, j.id, timing, "adaptive", "system")
        session.commit()
        self._send(session, row)

    def _send(self, session: Session, row: PlanRow) -> None:
        """Push without waiting: the cabinet's plan events say what it did."""
        row.state = "pushed"
        session.commit()
        if self.link is not None:
            self.link.send(
                row.junction, "plan", {"version": row.version, "plan": row.body}
            )
