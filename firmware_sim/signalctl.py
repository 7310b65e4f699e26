"""A traffic signal controller on a TCP socket, speaking the cabinet protocol.

It stands in for the controller in the cabinet (GB/T 20999-2017 framing,
:mod:`signal_controller.gbt20999`, with the deviations listed there): it
runs the plan it was given with its own clock, switches to a new plan at
the end of its cycle (stretching the first green to reach the new
offset), answers queries and sets, and reports its running state and every
group's signal once a second. Modes:
plan, flashing yellow, all-red, hold. An ``actuated`` plan runs on the
controller's own detector inputs (an advance and a stop-line loop per
lane, :meth:`ControllerSim.detect`): max-pressure picks each next stage,
the plan's greens bound them. For tests it can be made faulty: show
two conflicting greens, or refuse plans. ``on_states`` lets a traffic
simulator (SUMO) follow the lights.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from firmware_sim.pressure import Pressure, choose
from signal_controller.gbt20999 import (
    Frame,
    FrameError,
    FrameReader,
    FrameType,
    Mode,
    Obj,
    Value,
    decode_plan,
    encode,
    encode_running,
)
from signal_controller.junction import Junction, Plan, state_at
from signal_controller.transition import Change, plan_change, signals_during

if TYPE_CHECKING:
    from collections.abc import Callable

    from edge.clock import Clock

logger = logging.getLogger(__name__)

CONTROLLER_ID = 0x2001


class ControllerSim:
    """One junction's controller; the cabinet connects to ``port``."""

    def __init__(
        self,
        junction: Junction,
        *,
        clock: Clock,
        port: int = 0,
        on_states: Callable[[dict[str, str]], None] | None = None,
    ) -> None:
        self.junction = junction
        self.clock = clock
        self.on_states = on_states
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = int(self.server.getsockname()[1])
        self.mode = Mode.ALL_RED  # until the cabinet gives it a plan
        self.plan: Plan | None = None
        self.pending: Plan | None = None
        self.epoch = 0.0  # when the running plan's stage 1 started (cycle 0)
        self.fault_conflict = False
        self.refuse_plans = False
        self.plans_applied: list[str] = []
        # actuated: (when, stage index) of each green start, the last 256
        self.changes: deque[tuple[float, int]] = deque(maxlen=256)
        self.zones = Pressure()  # its detector inputs (actuated mode)
        self.boxes: dict[str, bool] = {}  # permissive group -> a turner inside
        # each lane's groups (its stop-line loop tells when their last crossed)
        self.lane_groups: dict[str, frozenset[str]] = {}
        self.crossed_at: dict[str, float] = {}
        self.act_cleared: dict[str, float] = {}  # … seen gone, s into the change
        self._conn: socket.socket | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._seq = 0
        self._threads: list[threading.Thread] = []

    # -- what it shows -------------------------------------------------------------
    def states(self, now: float | None = None) -> dict[str, str]:
        """Every group's signal now (G, g, y, r; flashing yellow shows as f)."""
        now = self.clock.monotonic() if now is None else now
        with self._lock:
            self._maybe_switch(now)
            if self.mode == Mode.FLASH:
                out = dict.fromkeys(self.junction.groups, "f")
            elif self.mode == Mode.ALL_RED or self.plan is None:
                out = dict.fromkeys(self.junction.groups, "r")
            elif self.mode == Mode.HOLD:
                out = state_at(self.junction, self.plan, self._held)
            elif self.plan.actuated and not self.plan.coordinated:
                out = self._actuated(now)
            elif now < self.epoch:  # dwelling in stage 1 to reach the offset
                out = state_at(self.junction, self.plan, 0.0)
            else:
                out = state_at(self.junction, self.plan, now - self.epoch)
        if self.fault_conflict:  # a failing load switch: two crossing greens
            out = {**out, "Ws": "G", "Ns": "G"}
        return out

    def stage(self, now: float) -> tuple[int, float]:
        """(stage number from 1, seconds into it) of the running plan."""
        if self.plan is None:
            return 0, 0.0
        if self.plan.actuated and not self.plan.coordinated:
            # the traffic's thread may have moved the stage machine past ``now``
            return self.act_stage + 1, max(0.0, now - self.act_since)
        if now < self.epoch:
            return 1, 0.0
        into = (now - self.epoch) % self.plan.cycle
        start = 0.0
        for i, green in enumerate(self.plan.greens, start=1):
            span = green + self.plan.intergreen
            if into < start + span:
                return i, into - start
            start += span
        return len(self.plan.greens), 0.0

    # -- vehicle-actuated mode ------------------------------------------------------
    def detect(
        self,
        zone: str,
        t: float,
        *,
        entered: int = 0,
        left: int = 0,
        occupied: bool | None = None,
    ) -> None:
        """Vehicles over a lane's advance loop (``entered``) or stop-line loop.

        ``occupied``: whether a vehicle stands on the stop-line loop now.
        """
        with self._lock:
            if entered:
                self.zones.entered(zone, t, entered)
            if left:
                self.zones.left(zone, t, left)
                for g in self.lane_groups.get(zone, ()):
                    self.crossed_at[g] = t
            if occupied is not None:
                self.zones.standing(zone, occupied=occupied, t=t)

    def _actuated(self, now: float) -> dict[str, str]:
        """The vehicle-actuated stage machine's signals at ``now``.

        Max-pressure over the detector zones (:mod:`firmware_sim.pressure`)
        picks the next stage; the plan's greens, doubled, are the maxima.
        Each change goes group by group (:mod:`signal_controller.transition`):
        every starting group waits for its own intergreens only.
        """
        self._advance(now)
        j = self.junction
        if self.act_phase == "green" or self.act_change is None:
            stage = j.stages[self.act_stage]
            return {g: stage.get(g, "r") for g in j.groups}
        return signals_during(
            j,
            self.act_change,
            now - self.act_since,
            crossed=self._crossed(),
            cleared=self.act_cleared,
        )

    def _crossed(self) -> dict[str, float] | None:
        """When each ending group's last vehicle crossed its stop line.

        Seconds from the end of its green, for the groups whose vehicles
        crossed during it; ``None`` without stop-line loops wired to groups.
        """
        if not self.lane_groups:
            return None
        return {
            g: t - self.act_since
            for g, t in self.crossed_at.items()
            if t >= self.act_green_from
        }

    def detect_box(self, group: str, *, occupied: bool) -> None:
        """Whether a vehicle of permissive ``group`` is inside the junction now.

        A presence detector over the left turners' course through the box
        (where they wait for a gap): once it is seen empty with their signal
        red, the crossing streets need not wait the long intergreen for a
        turner who may still be inside.
        """
        with self._lock:
            self.boxes[group] = occupied

    def _waiting(self) -> set[str]:
        """Groups of the ending stage behind which a left turner may wait inside.

        Its permissive groups: with a presence detector over their course,
        always (the detector tells when they are gone); without one, if a
        vehicle crossed a yielding stop line during the ending green
        (through its yellow too).
        """
        stage = self.junction.stages[self.act_stage]
        permissive = {g for g, s in stage.items() if s == "g"}
        if self.zones.crossed_permissive(self.act_stage, self.act_green_from):
            return permissive
        return permissive & self.boxes.keys()

    def _detour(self, nxt: int, pressure: list[float]) -> int:
        """With ``VIA_PROTECTED``: after permissive turns crossed, their own green.

        A left turner may wait inside: it leaves under its protected green
        rather than through a long permissive intergreen.
        """
        if not self.VIA_PROTECTED or not self.zones.crossed_permissive(
            self.act_stage, self.act_since
        ):
            return nxt
        prot = self.zones.protecting(self.act_stage)
        if prot is not None and prot != nxt and pressure[prot] > 0:
            return prot
        return nxt

    def _advance(self, now: float) -> None:
        assert self.plan is not None  # noqa: S101 - called with a plan
        moved = True
        while moved:
            step = self._green_step if self.act_phase == "green" else self._change_step
            moved = step(now, self.plan)

    def _green_step(self, now: float, plan: Plan) -> bool:
        """At a decision point, maybe start a change; whether anything moved on."""
        longest = max(
            self.MAX_GREEN_FACTOR * plan.greens[self.act_stage],
            self.junction.min_green_s + self.SLOT_S,
        )
        at_max = now >= self.act_since + longest
        if now < self.act_check and not at_max:
            return False
        self.zones.heal(self.act_stage, self.act_since, now)
        pressure = self.zones.of(len(self.junction.stages), now)
        serving = (
            None
            if self.GAP_OUT is None
            else self.zones.serving(self.act_stage, least=self.GAP_OUT)
        )
        nxt = choose(
            pressure,
            self.act_stage,
            at_max=at_max,
            ring=self.RING,
            serving=serving,
            bias=self.BIAS,
        )
        if nxt is None:
            while self.act_check <= now:
                self.act_check += self.SLOT_S
            return False
        self.act_next = self._detour(nxt, pressure)
        self.act_green_from = self.act_since
        self.act_phase, self.act_since = "change", now
        self._plan_change(plan)
        return True

    def _change_step(self, now: float, plan: Plan) -> bool:
        """Carry the change on; whether the new stage's green has begun."""
        into = now - self.act_since
        if into >= plan.yellow:
            if not self.act_settled:
                # who crossed during the yellow is known now: the waits
                # against a permissive end are settled
                self._plan_change(plan)
                self.act_settled = True
            for g, occupied in self.boxes.items():  # red for them: none comes in
                if not occupied:
                    self.act_cleared.setdefault(g, into)
        assert self.act_change is not None  # noqa: S101 - set with the phase
        length = self.act_change.length(
            crossed=self._crossed(), cleared=self.act_cleared
        )
        if into < length:
            return False
        self.act_stage = self.act_next
        self.act_phase = "green"
        self.act_since += length
        self.act_change = None
        self.act_cleared = {}
        self.changes.append((self.act_since, self.act_stage))
        self.act_check = self.act_since + self.junction.min_green_s
        return True

    def _plan_change(self, plan: Plan) -> None:
        self.act_settled = False
        self.act_change = plan_change(
            self.junction,
            self.act_stage,
            self.act_next,
            yellow=plan.yellow,
            all_red=plan.all_red,
            waiting=self._waiting(),
        )

    def _boundary(self, now: float) -> float:
        """When the running cycle ends (now, if no plan runs).

        An actuated plan has no cycle: a new plan takes over at once (the
        stage machine carries on with the new maxima).
        """
        if self.plan is None or self.mode != Mode.PLAN or now < self.epoch:
            return now
        if self.plan.actuated and not self.plan.coordinated:
            return now
        done = (now - self.epoch) // self.plan.cycle
        return self.epoch + (done + 1) * self.plan.cycle

    def _maybe_switch(self, now: float) -> None:
        """At the end of the running cycle, take the pending plan.

        Its stage 1 starts there and is held (dwell) until the cycle lines
        up with the new offset: a longer green, never a cut one.
        """
        if self.pending is None or now < self.switch_at:
            return
        new, t0 = self.pending, self.switch_at
        self.pending = None
        # a coordinated plan holds stage 1 until its offset lines up; a free
        # one starts its cycle at once
        self.epoch = t0 + (new.offset - t0) % new.cycle if new.coordinated else t0
        was_actuated = self.plan is not None and self.plan.actuated
        self.plan = new
        if new.actuated and not was_actuated:  # start the stage machine at stage 1
            self.act_stage, self.act_next, self.act_phase, self.act_since = (
                0,
                0,
                "green",
                t0,
            )
            self.act_check = t0 + self.junction.min_green_s
        if self.mode == Mode.ALL_RED:
            self.mode = Mode.PLAN
        self.plans_applied.append(new.version)

    # -- the wire ----------------------------------------------------------------------
    def start(self) -> None:
        """Accept the cabinet and start reporting."""
        for target in (self._accept, self._report):
            t = threading.Thread(target=target, daemon=True, name="controller-sim")
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Close the socket."""
        self._stop.set()
        self.server.close()
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        for t in self._threads:
            t.join(timeout=2)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self._conn = conn
            reader = FrameReader()
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(4096)
                except OSError:
                    break
                if not chunk:
                    break
                for frame in reader.feed(chunk):
                    self._answer(frame)
            self._conn = None

    def _send(
        self, ftype: FrameType, values: tuple[Value, ...], seq: int | None = None
    ) -> None:
        conn = self._conn
        if conn is None:
            return
        if seq is None:
            self._seq = (self._seq + 1) & 0xFFFF
            seq = self._seq
        frame = Frame(ftype, CONTROLLER_ID, 1, seq, values)
        with contextlib.suppress(OSError):
            conn.sendall(encode(frame))

    def _running_values(self) -> tuple[Value, ...]:
        now = self.clock.monotonic()
        states = self.states(now)
        number, into = self.stage(now)
        version = self.plan.version if self.plan else ""
        letters = "".join(states[g] for g in self.junction.groups).encode()
        return (
            Value(Obj.RUNNING, data=encode_running(self.mode, number, into, version)),
            Value(Obj.GROUPS, data=letters),
        )

    def _answer(self, frame: Frame) -> None:
        if frame.type == FrameType.QUERY:
            self._send(FrameType.QUERY_REPLY, self._running_values(), frame.seq)
        elif frame.type == FrameType.HEARTBEAT:
            self._send(FrameType.HEARTBEAT_REPLY, (), frame.seq)
        elif frame.type == FrameType.SET:
            try:
                self._set(frame.values)
            except (FrameError, ValueError, KeyError) as exc:
                self._send(
                    FrameType.ERROR,
                    (Value(Obj.FAULTS, data=str(exc).encode()),),
                    frame.seq,
                )
                return
            self._send(FrameType.SET_REPLY, (), frame.seq)

    def _set(self, values: tuple[Value, ...]) -> None:
        for v in values:
            if v.cls == Obj.MODE:
                with self._lock:
                    self._held = self.clock.monotonic() - self.epoch
                    self.mode = Mode(v.data[0])
            elif v.cls == Obj.PLAN:
                if self.refuse_plans:
                    raise ValueError("plan not supported by this controller")
                meta: dict[str, Any] = next(
                    (json.loads(x.data) for x in values if x.cls == Obj.DEVICE), {}
                )
                greens, cycle, offset, yellow, all_red = decode_plan(v.data)
                if len(greens) != len(self.junction.stages):
                    raise ValueError(
                        f"{len(greens)} greens for {len(self.junction.stages)} stages"
                    )
                with self._lock:
                    self.switch_at = self._boundary(self.clock.monotonic())
                    self.pending = Plan(
                        junction=self.junction.id,
                        version=str(meta.get("version", "")),
                        greens=greens,
                        cycle=cycle,
                        offset=offset,
                        yellow=yellow,
                        all_red=all_red,
                        coordinated=bool(meta.get("coordinated", False)),
                        actuated=bool(meta.get("actuated", False)),
                    )

    def _report(self) -> None:
        while not self._stop.wait(1.0):
            states = self.states()
            if self.on_states is not None:
                self.on_states(states)
            self._send(FrameType.REPORT, self._running_values())

    _held = 0.0
    switch_at = 0.0
    SLOT_S = 1.0  # actuated: the next stage is chosen this often after min green
    RING = False  # actuated: True serves stages round the ring, skipping empty ones
    VIA_PROTECTED = False  # actuated: after permissive turns, their own green
    # actuated: with GAP_OUT, a green holds while its lanes weighted at least
    # this still have vehicles coming, unless another stage leads by BIAS
    GAP_OUT: float | None = 1.0  # None: max-pressure alone decides when
    BIAS = 2.0
    MAX_GREEN_FACTOR = 2.0  # … and a green runs at most this × the plan's
    act_check = 0.0  # the next decision point
    act_green_from = float("-inf")  # when the ending green began
    act_change: Change | None = None  # the stage change under way
    act_settled = False  # its waits against a permissive end are final
    act_stage = 0
    act_next = 0
    act_phase = "green"
    act_since = 0.0
