"""The signal cabinet's agent: plans in, a safe junction out.

It guards one junction (:mod:`signal_controller.cabinet`) and drives its
controller over the cabinet protocol (:mod:`signal_controller.link`):

* **plans** arrive as central's signed ``plan`` command (unsigned or badly
  signed ones are refused, whatever the settings say); each is checked
  against the junction's rules and a refusal names the rule. An accepted
  plan is sent to the controller, which takes it at the end of its cycle
  (stage 1 held until the new offset lines up); ``plan`` events report
  accepted, refused, failed, and applied once the controller runs it;
* **fallback**: with no plan from central, or central unreachable for
  ``central_lost_s``, the junction runs its time-of-day schedule, and goes
  back to central's plan when the link returns;
* **manual** ``mode`` commands (flash, all-red, hold, plan), signed, with
  the operator's name recorded in a ``mode`` event;
* the **conflict monitor**: if the controller ever reports conflicting
  greens, or cannot honour a plan, the cabinet orders flashing yellow and
  raises a fault, and stays there until an operator returns it to plan;
* its **running state** (mode, plan, stage, every group's signal and since
  when) is published as retained state each second — the console's map
  and the junction's cameras (red-light capture) read it;
* **updates** wait outside its peak hours (``peak_windows``).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from edge.agent import Agent
from edge.errors import CommandError
from edge.ota.window import in_windows
from edge.protocol.messages import SignalConfig
from signal_controller.cabinet import load_junction, plan_from, scheduled_plan
from signal_controller.gbt20999 import (
    FrameError,
    FrameType,
    Mode,
    Obj,
    Value,
    decode_running,
    encode_plan,
)
from signal_controller.junction import (
    Plan,
    PlanRefusedError,
    conflicting_greens,
    intergreen_table,
)
from signal_controller.link import ControllerLink
from signal_controller.settings import SignalSettings

if TYPE_CHECKING:
    from edge.bus import Bus
    from edge.clock import Clock
    from edge.outbox import Outbox
    from edge.protocol.messages import NodeConfig

logger = logging.getLogger(__name__)

WORDS = {"G": "green", "g": "green", "y": "yellow", "r": "red", "f": "flash"}
MODES = {
    "plan": Mode.PLAN,
    "flash": Mode.FLASH,
    "all_red": Mode.ALL_RED,
    "hold": Mode.HOLD,
}


class SignalAgent(Agent):
    """One junction's cabinet."""

    kind = "signal_controller"
    config_model = SignalConfig
    settings_model = SignalSettings
    signed_commands = frozenset({"trust_key", "plan", "mode"})

    def __init__(
        self,
        *,
        settings: SignalSettings,
        bus: Bus,
        outbox: Outbox,
        clock: Clock,
        link: ControllerLink | None = None,
    ) -> None:
        super().__init__(settings=settings, bus=bus, outbox=outbox, clock=clock)
        self.ss = settings
        self.junction, self.schedule = load_junction(settings.junction_file)
        self.link = link or ControllerLink(settings.controller_url)
        self.link.start()
        self.central_plan: Plan | None = None
        self.previous_plan: Plan | None = None
        self.sent: Plan | None = None  # the plan the controller was last given
        self._sent_seq: int | None = None
        self.running: dict[str, Any] = {}
        self.groups: dict[str, dict[str, str]] = {}
        self.latched: str = ""  # why the cabinet flashes until an operator resets
        self._last_report = clock.monotonic()
        self._link_lost_at: float | None = None
        self._next_state = 0.0
        self._next_poll = 0.0
        self._reported_running = ""  # the last plan reported as running
        self.commands |= {"plan": self._plan, "mode": self._mode}

    # -- commands from central (signed) ----------------------------------------------
    def _plan(self, args: dict[str, Any]) -> dict[str, Any]:
        spec = args.get("plan")
        version = str(args.get("version", ""))[:64]
        if not isinstance(spec, dict) or not version:
            raise CommandError("expected {'version': …, 'plan': {greens, …}}")
        try:
            plan = plan_from(self.junction, version, spec)
        except PlanRefusedError as exc:
            refusal: dict[str, Any] = {
                "version": version,
                "state": "refused",
                "rule": exc.rule,
                "detail": exc.detail,
            }
            if exc.rule == "intergreen":
                # what its changes must last, so central's next plan can
                refusal["intergreens"] = intergreen_table(self.junction)
            self.emit("plan", refusal)
            raise CommandError(f"plan refused by rule {exc}") from exc
        if self.central_plan is not None and self.central_plan.version != plan.version:
            self.previous_plan = self.central_plan
        self.central_plan = plan
        # the intergreen matrix it will be held to, for central to show with it
        intergreens = intergreen_table(self.junction)
        self.emit(
            "plan",
            {"version": version, "state": "accepted", "intergreens": intergreens},
        )
        return {
            "accepted": version,
            "at": "the end of the running cycle",
            "intergreens": intergreens,
        }

    def _mode(self, args: dict[str, Any]) -> dict[str, Any]:
        name, operator = args.get("mode"), str(args.get("operator", ""))[:64]
        if name not in MODES or not operator:
            raise CommandError(
                f"expected mode of {sorted(MODES)} and an operator, got {name!r}"
            )
        if name == "plan":
            self.latched = ""
        self._send_mode(MODES[name])
        self.emit("mode", {"mode": name, "operator": operator})
        return {"mode": name}

    def _send_mode(self, mode: Mode) -> None:
        self.link.send(FrameType.SET, (Value(Obj.MODE, data=bytes((int(mode),))),))

    # -- what the junction should run ---------------------------------------------
    def desired(self) -> Plan:
        """Central's plan, or the time-of-day fallback when central is away."""
        now = self.clock.monotonic()
        if self.bus.connected:
            self._link_lost_at = None
        elif self._link_lost_at is None:
            self._link_lost_at = now
        lost = (
            self._link_lost_at is not None
            and now - self._link_lost_at > self.ss.central_lost_s
        )
        if self.central_plan is not None and not lost:
            return self.central_plan
        local = self.clock.now().astimezone(ZoneInfo(self.ss.tz)).time()
        return scheduled_plan(self.schedule, local)

    def _push(self, plan: Plan) -> None:
        data = encode_plan(
            plan.greens, plan.cycle, plan.offset, plan.yellow, plan.all_red
        )
        meta = json.dumps(
            {
                "version": plan.version,
                "coordinated": plan.coordinated,
                "actuated": plan.actuated,
            }
        ).encode()
        seq = self.link.send(
            FrameType.SET, (Value(Obj.DEVICE, data=meta), Value(Obj.PLAN, data=data))
        )
        if seq is not None:
            self.sent, self._sent_seq = plan, seq

    # -- the loop --------------------------------------------------------------
    def step(self) -> None:
        """Read the controller, watch it, give it the right plan, report."""
        while not self.link.frames.empty():
            self._take(self.link.frames.get_nowait())
        now = self.clock.monotonic()
        want = self.desired()
        if not self.latched and (
            self.sent is None or self.sent.version != want.version
        ):
            self._push(want)
        if now >= self._next_poll:
            self._next_poll = now + 1.0
            self.link.send(FrameType.QUERY, (Value(Obj.RUNNING),))
        if now >= self._next_state and self.bus.connected:
            self._next_state = now + 1.0
            self.state_detail = {"signal": self.signal_view()}
            self.publish_state()

    def _take(self, frame: Any) -> None:  # noqa: ANN401 - a Frame
        if frame.type in (FrameType.REPORT, FrameType.QUERY_REPLY):
            self._last_report = self.clock.monotonic()
            self._running(frame.values)
        elif frame.type == FrameType.SET_REPLY and frame.seq == self._sent_seq:
            self._sent_seq = None  # loaded; "applied" once the controller runs it
        elif frame.type == FrameType.ERROR:
            reason = b"".join(v.data for v in frame.values).decode(errors="replace")
            if frame.seq == self._sent_seq and self.sent is not None:
                self.emit(
                    "plan",
                    {"version": self.sent.version, "state": "failed", "detail": reason},
                )
            self._trip(f"controller cannot honour the plan: {reason}"[:200])

    def _running(self, values: tuple[Value, ...]) -> None:
        letters = ""
        for v in values:
            if v.cls == Obj.RUNNING:
                try:
                    mode, stage, into, version = decode_running(v.data)
                except FrameError:
                    continue
                self.running = {
                    "mode": mode.name.lower(),
                    "stage": stage,
                    "into_s": into,
                    "plan": version,
                }
                if version and version != self._reported_running:
                    self._reported_running = version
                    self.emit("plan", {"version": version, "state": "applied"})
            elif v.cls == Obj.GROUPS:
                letters = v.data.decode(errors="replace")
        if len(letters) != len(self.junction.groups):
            return
        states = dict(zip(self.junction.groups, letters, strict=True))
        now = self.clock.now().isoformat()
        for group, letter in states.items():
            word = WORDS.get(letter, "dark")
            if self.groups.get(group, {}).get("state") != word:
                self.groups[group] = {"state": word, "since": now}
        bad = conflicting_greens(self.junction, states)
        if bad:
            pairs = ", ".join(f"{a}+{b}" for a, b in bad)
            self._trip(f"conflicting greens {pairs}")

    def _trip(self, why: str) -> None:
        """The conflict monitor: flashing yellow, a fault, until an operator resets."""
        if not self.latched:
            logger.error("Junction %s to flashing yellow: %s", self.junction.id, why)
            self.emit(
                "fault",
                {"code": "conflict_monitor", "active": True, "detail": why},
                priority=1,
            )
        self.latched = why
        self._send_mode(Mode.FLASH)

    def signal_view(self) -> dict[str, Any]:
        """The running state as the console and cameras read it."""
        return {
            "junction": self.junction.id,
            **self.running,
            "latched": self.latched,
            "source": "central"
            if self.sent is self.central_plan and self.sent
            else "fallback",
            "groups": self.groups,
        }

    def faults(self) -> set[str]:
        """Conflict monitor tripped; controller silent."""
        out = set()
        if self.latched:
            out.add("conflict_monitor")
        if self.clock.monotonic() - self._last_report > self.ss.controller_silent_s:
            out.add("controller_silent")
        return out

    def update_deferral(self) -> str | None:
        """Never during the junction's peak hours (local time)."""
        config = self.config
        windows = config.peak_windows if isinstance(config, SignalConfig) else []
        local = self.clock.now().astimezone(ZoneInfo(self.ss.tz))
        window = in_windows(local, windows)
        return f"peak hours {window} at this junction" if window else None

    def apply_config(self, config: NodeConfig) -> None:
        """Peak windows come from central's configuration."""
        del config

    def _shutdown(self) -> None:
        self.link.stop()
        super()._shutdown()
