"""Real traffic for the signal chain: Eclipse SUMO drives cards and obeys lights.

:class:`SumoCoSim` runs a SUMO scenario (libsumo, in process) whose
induction loops — placed ``detector_m`` upstream of every stop line —
count vehicles into simulated detector cards (:class:`DetectorCard`, real
Modbus RTU on ptys) and, with a second loop at each stop line, into the
controllers' detector inputs; whose traffic lights show what the simulated
controllers (:class:`ControllerSim`, the cabinet protocol on TCP) show.
Everything else is the real chain: detector nodes → MQTT → central →
signed plans → cabinets → controllers. One shared :class:`ManualClock`
is simulation time for every part, advanced by one second per SUMO step,
paced at ``speed`` × real time so the chain keeps up.

The junction's stage tables are the scenario's phase structures
(:data:`STAGES`); lanes map to stages by the movements they serve.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sumolib

from firmware_sim.detector import DetectorCard
from firmware_sim.pressure import lane_weights
from signal_controller.intergreen import Path as LanePath

if TYPE_CHECKING:
    import threading

    from edge.clock import ManualClock
    from firmware_sim.signalctl import ControllerSim

logger = logging.getLogger(__name__)

THROUGH = {"Es": "G", "Er": "G", "Ws": "G", "Wr": "G", "El": "g", "Wl": "g"}
SIDE = {"Ns": "G", "Nr": "G", "Ss": "G", "Sr": "G", "Nl": "g", "Sl": "g"}
# The benchmark scenarios' phase structures (A: four stages, B: three).
STAGES = {
    "A": [THROUGH, {"El": "G", "Wl": "G"}, SIDE, {"Nl": "G", "Sl": "G"}],
    "B": [THROUGH, {"El": "G", "Wl": "G"}, SIDE],
}
SUMO_LETTER = {"G": "G", "g": "g", "y": "y", "r": "r", "f": "o"}
LANES_PER_CARD = 8


@dataclass
class Lane:
    """One incoming lane: where its loop is and what it feeds."""

    lane_id: str
    approach: str
    moves: set[str]
    loop_id: str
    card: int = 0
    channel: int = 0

    def stage(self, stages: list[dict[str, str]]) -> int:
        """The stage in which this lane's traffic has protected right of way."""
        groups = {f"{self.approach}{m}" for m in self.moves}
        for i, stage in enumerate(stages):
            if any(stage.get(g) == "G" for g in groups):
                return i
        return 0

    def permissive(self, stages: list[dict[str, str]]) -> bool:
        """Whether this lane's traffic also goes, yielding, in some stage."""
        groups = {f"{self.approach}{m}" for m in self.moves}
        return any(stage.get(g) == "g" for g in groups for stage in stages)

    def groups(self) -> frozenset[str]:
        """The signal groups whose vehicles cross this lane's stop line."""
        return frozenset(f"{self.approach}{m}" for m in self.moves)

    def weights(self, stages: list[dict[str, str]]) -> dict[int, float]:
        """How this lane's vehicles press on each stage (for max-pressure)."""
        return lane_weights({f"{self.approach}{m}" for m in self.moves}, stages)

    def saturation(self) -> float:
        """veh/h of green: a shared lane flows slower than a dedicated one."""
        return 1550.0 if len(self.moves) > 1 else 1800.0


@dataclass
class Junction:
    """A signalised junction of the scenario and its cards."""

    tls: str
    links: list[tuple[str, str]]  # per SUMO link index: (approach, move)
    lanes: list[Lane] = field(default_factory=list)
    cards: list[DetectorCard] = field(default_factory=list)
    controller: ControllerSim | None = None
    paths: list[LanePath] = field(default_factory=list)  # each link's course
    # permissive left group -> SUMO's internal lanes of its course (where a
    # presence detector over the box sees a turner waiting for a gap)
    boxes: dict[str, list[str]] = field(default_factory=dict)

    def file_paths(self) -> list[dict[str, Any]]:
        """The lanes' paths as the cabinet's junction file has them."""
        return [
            {
                "group": p.group,
                "points": [[round(x, 2), round(y, 2)] for x, y in p.points],
                "wait_m": None if p.wait_m is None else round(p.wait_m, 2),
            }
            for p in self.paths
        ]

    def detectors(
        self, device_of_card: list[str], stages: list[dict[str, str]]
    ) -> dict[str, Any]:
        """The junction's detector map for central.

        Card → lane → [stage, saturation, approach, permissive]: the last
        true where the lane's turn also goes, yielding, in another stage.
        """
        out: dict[str, dict[str, list[Any]]] = {}
        for lane in self.lanes:
            out.setdefault(device_of_card[lane.card], {})[str(lane.channel)] = [
                lane.stage(stages),
                lane.saturation(),
                lane.approach,
                lane.permissive(stages),
            ]
        return out

    def sumo_state(self, groups: dict[str, str]) -> str:
        """The SUMO state string for the controller's group signals."""
        return "".join(
            SUMO_LETTER.get(groups.get(f"{a}{m}", "r"), "r") for a, m in self.links
        )


def network(scenario_dir: Path, work: Path) -> Path:
    """The scenario's network: as given, or built with netconvert from plain XML."""
    given = scenario_dir / "net_static.net.xml"
    if given.exists():
        return given
    out = work / "net_static.net.xml"
    if not out.exists():
        name = next(scenario_dir.glob("*.nod.xml")).name.removesuffix(".nod.xml")
        netconvert = Path(sys.executable).with_name("netconvert")
        subprocess.run(
            [
                str(netconvert if netconvert.exists() else "netconvert"),
                "--node-files", str(scenario_dir / f"{name}.nod.xml"),
                "--edge-files", str(scenario_dir / f"{name}.edg.xml"),
                "--connection-files", str(scenario_dir / f"{name}.con.xml"),
                "--tls.default-type", "static",
                "--no-turnarounds", "true",
                "-o", str(out),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    return out


def read_collisions(path: Path) -> list[dict[str, str]]:
    """The ``<collision>`` elements of a SUMO collision output, as dicts."""
    if not path.exists():
        return []
    import xml.etree.ElementTree as ET  # noqa: PLC0415 - SUMO's own output

    try:
        root = ET.parse(path).getroot()  # noqa: S314 - our own SUMO's file
    except ET.ParseError:
        return []
    return [dict(c.attrib) for c in root.iter("collision")]


def link_paths(
    net: Any,  # noqa: ANN401 - a sumolib net read with its internal lanes
    tls_id: str,
    links: list[tuple[str, str]],
) -> list[LanePath]:
    """Each signal link's course through the junction, from SUMO's internal lanes.

    A link's internal lane, followed through internal junctions (where a
    left turner waits for a gap: ``wait_m`` is there), to the outgoing lane.
    """
    out = []
    for in_lane, out_lane, index in net.getTLS(tls_id).getConnections():
        conn = next(c for c in in_lane.getOutgoing() if c.getToLane() == out_lane)
        via = conn.getViaLaneID()
        if not via:
            continue
        points: list[tuple[float, float]] = []
        wait = None
        while via:
            lane = net.getLane(via)
            shape = [(float(x), float(y)) for x, y in lane.getShape()]
            if points:
                wait = LanePath("x", tuple(points)).length
                shape = shape[1:] if shape[0] == points[-1] else shape
            points.extend(shape)
            nxt = [c.getViaLaneID() for c in lane.getOutgoing()]
            via = nxt[0] if nxt and nxt[0] else ""
        approach, move = links[index]
        out.append(LanePath(f"{approach}{move}", tuple(points), wait))
    return out


def box_lanes(
    net: Any,  # noqa: ANN401 - a sumolib net read with its internal lanes
    tls_id: str,
    links: list[tuple[str, str]],
) -> dict[str, list[str]]:
    """The internal lanes of each turn that may wait inside (an internal junction).

    What a presence detector over the box covers for that group.
    """
    out: dict[str, list[str]] = {}
    for in_lane, out_lane, index in net.getTLS(tls_id).getConnections():
        conn = next(c for c in in_lane.getOutgoing() if c.getToLane() == out_lane)
        via, chain = conn.getViaLaneID(), []
        while via:
            chain.append(via)
            nxt = [c.getViaLaneID() for c in net.getLane(via).getOutgoing()]
            via = nxt[0] if nxt and nxt[0] else ""
        if len(chain) > 1:  # it passes an internal junction: it may wait there
            approach, move = links[index]
            out.setdefault(f"{approach}{move}", []).extend(chain)
    return out


def derive_links(net: Any) -> dict[str, list[tuple[str, str]]]:  # noqa: ANN401 - a sumolib net
    """(approach, move) of every signal link, from the geometry.

    The approach is the side the incoming edge comes from; the move is
    SUMO's turn direction (``s``, ``l``/``L`` left, ``r``/``R`` right).
    """
    out = {}
    for tls in net.getTrafficLights():
        node = net.getNode(tls.getID())
        cx, cy = node.getCoord()
        links: dict[int, tuple[str, str]] = {}
        for in_lane, out_lane, index in tls.getConnections():
            fx, fy = in_lane.getEdge().getFromNode().getCoord()
            dx, dy = fx - cx, fy - cy
            approach = (
                ("E" if dx > 0 else "W")
                if abs(dx) >= abs(dy)
                else ("N" if dy > 0 else "S")
            )
            conn = in_lane.getEdge().getConnections(out_lane.getEdge())
            direction = conn[0].getDirection().lower() if conn else "s"
            links[index] = (approach, direction if direction in "slr" else "s")
        out[tls.getID()] = [links[i] for i in sorted(links)]
    return out


class SumoCoSim:
    """One SUMO run whose loops feed cards and whose lights follow controllers."""

    def __init__(
        self,
        scenario_dir: Path,
        *,
        seed: int,
        work_dir: Path,
        detector_m: float = 60.0,
        demand: str | None = None,
        routes: Path | None = None,
        end_s: int = 5400,
    ) -> None:
        self.dir = scenario_dir
        if routes is None and demand and Path(demand).is_absolute():
            routes = Path(demand)  # a demand file of one's own (a variant)
        self.routes = routes or scenario_dir / (
            f"routes_{demand}.rou.xml" if demand else "routes.rou.xml"
        )
        self.seed = seed
        self.work = work_dir
        self.work.mkdir(parents=True, exist_ok=True)
        self.end_s = end_s
        self.tripinfo = self.work / f"tripinfo_{seed}.xml"
        self.collision_file = self.work / f"collisions_{seed}.xml"
        # what goes with a demand file: ``x.add.xml`` beside ``x.rou.xml``
        # (a lane closure's rerouter, say)
        beside = self.routes.with_name(
            self.routes.name.removesuffix(".rou.xml") + ".add.xml"
        )
        self.extra_additional: list[Path] = [beside] if beside.exists() else []
        self.net_file = network(scenario_dir, self.work)
        net = sumolib.net.readNet(str(self.net_file), withInternal=True)
        links_file = scenario_dir / "links.json"
        links = (
            json.loads(links_file.read_text(encoding="utf-8"))
            if links_file.exists()
            else derive_links(net)
        )
        self.junctions: dict[str, Junction] = {}
        loops = []
        for tls in net.getTrafficLights():
            j = Junction(tls.getID(), [tuple(x) for x in links[tls.getID()]])
            j.paths = link_paths(net, j.tls, j.links)
            j.boxes = box_lanes(net, j.tls, j.links)
            by_lane: dict[str, Lane] = {}
            for in_lane, _out, index in tls.getConnections():
                approach, move = j.links[index]
                lane = by_lane.get(in_lane.getID())
                if lane is None:
                    loop = f"loop_{in_lane.getID()}"
                    lane = Lane(in_lane.getID(), approach, set(), loop)
                    by_lane[in_lane.getID()] = lane
                    length = in_lane.getLength()
                    for loop_id, pos in (
                        (loop, max(0.5, length - detector_m)),
                        (f"stop_{in_lane.getID()}", max(1.0, length - 1.0)),
                    ):
                        loops.append(
                            f'<inductionLoop id="{loop_id}" lane="{in_lane.getID()}" '
                            f'pos="{pos:.1f}" period="3600" file="/dev/null"/>'
                        )
                lane.moves.add(move)
            order = {"W": 0, "E": 1, "N": 2, "S": 3}
            j.lanes = sorted(
                by_lane.values(), key=lambda ln: (order[ln.approach], ln.lane_id)
            )
            for i, lane in enumerate(j.lanes):
                lane.card, lane.channel = divmod(i, LANES_PER_CARD)
                lane.channel += 1
            for _ in range((len(j.lanes) + LANES_PER_CARD - 1) // LANES_PER_CARD):
                j.cards.append(DetectorCard(LANES_PER_CARD))
            self.junctions[j.tls] = j
        self.additional = self.work / "loops.add.xml"
        self.additional.write_text(
            "<additional>\n  " + "\n  ".join(loops) + "\n</additional>\n",
            encoding="utf-8",
        )
        self.conn: Any = None
        self.t = 0
        self.arrived = 0  # vehicles that finished their trip
        self._on_loop: dict[str, set[str]] = {}

    def start(self) -> None:
        """Start the cards and SUMO."""
        import libsumo  # noqa: PLC0415 - one SUMO per process

        for j in self.junctions.values():
            for card in j.cards:
                card.start()
        libsumo.start(
            [
                "sumo",
                "-n", str(self.net_file),
                "-r", str(self.routes),
                "-a", ",".join(
                    str(a) for a in [self.additional, *self.extra_additional]
                ),
                "--seed", str(self.seed),
                "--begin", "0",
                "--end", str(self.end_s),
                "--time-to-teleport", "-1",
                "--tripinfo-output", str(self.tripinfo),
                "--tripinfo-output.write-unfinished", "true",
                "--tripinfo-output.write-undeparted", "true",
                "--no-step-log", "true",
                "--no-warnings", "true",
                "--duration-log.disable", "true",
                # SUMO's junction collision check, as the judge runs it
                "--collision.check-junctions", "true",
                "--collision.action", "warn",
                "--collision-output", str(self.collision_file),
            ]
        )  # fmt: skip
        self.conn = libsumo

    def step(self, clock: ManualClock) -> None:
        """One second: lights from the controllers, traffic moves, loops count."""
        for j in self.junctions.values():
            if j.controller is not None:
                groups = j.controller.states(clock.monotonic())
                self.conn.trafficlight.setRedYellowGreenState(
                    j.tls, j.sumo_state(groups)
                )
        self.conn.simulationStep()
        self.arrived += self.conn.simulation.getArrivedNumber()
        now = clock.monotonic()
        for j in self.junctions.values():
            for lane in j.lanes:
                new = self._arrivals(lane.loop_id)
                for _ in range(new):
                    j.cards[lane.card].vehicle(lane.channel)
                if j.controller is not None:  # the controller's own loop inputs
                    stop = f"stop_{lane.lane_id}"
                    left = self._arrivals(stop)
                    j.controller.detect(
                        lane.lane_id,
                        now,
                        entered=new,
                        left=left,
                        occupied=bool(self._on_loop[stop]),
                    )
            if j.controller is not None:  # presence over the left turners' box
                for group, lanes in j.boxes.items():
                    j.controller.detect_box(
                        group,
                        occupied=any(
                            self.conn.lane.getLastStepVehicleNumber(x) for x in lanes
                        ),
                    )
        self.t += 1
        clock.advance(1)

    def _arrivals(self, loop: str) -> int:
        """Vehicles that reached ``loop`` this step (a queued one stands on it)."""
        now_on = set(self.conn.inductionloop.getLastStepVehicleIDs(loop))
        new = now_on - self._on_loop.get(loop, set())
        self._on_loop[loop] = now_on
        return len(new)

    def done(self) -> bool:
        """The run is over: past the end, or every vehicle has arrived."""
        if self.t >= self.end_s:
            return True
        return self.t > 3600 and self.conn.simulation.getMinExpectedNumber() == 0  # noqa: PLR2004

    def run(
        self,
        clock: ManualClock,
        *,
        speed: float,
        until_s: int | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """Step at ``speed`` × real time until done (or ``until_s``, or ``stop``)."""
        started = time.monotonic()
        begin = self.t
        while not self.done() and (until_s is None or self.t < until_s):
            if stop is not None and stop.is_set():
                return
            self.step(clock)
            ahead = (self.t - begin) / speed - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)

    def collisions(self) -> list[dict[str, str]]:
        """The collisions SUMO recorded (after :meth:`stop`): who, where, when."""
        return read_collisions(self.collision_file)

    def stop(self) -> None:
        """Close SUMO (writing tripinfo) and the cards."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        for j in self.junctions.values():
            for card in j.cards:
                card.stop()
