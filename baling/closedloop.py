"""The whole signal chain against SUMO, on one machine, in simulation time.

:func:`closed_loop` starts Mosquitto, central (SQLite) and, per junction of
a SUMO scenario, the detector nodes reading their cards over Modbus RTU,
the cabinet agent with its controller on TCP, and registers each junction
with its detectors' lanes — adaptive from the start. The caller runs SUMO
(:class:`SumoCoSim`) and reads the result. Everything shares one manual
clock, so a simulated hour runs in a couple of minutes.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sumolib
from sqlmodel import Session

from baling.broker import Mosquitto
from central.fleet import registry
from central.main import Central
from central.settings import CentralSettings
from central.signals.models import JunctionRow
from edge.clock import ManualClock
from edge.node import build_agent
from edge.protocol.signing import public_key_text
from firmware_sim.signalctl import ControllerSim
from firmware_sim.traffic import STAGES, SumoCoSim
from firmware_sim.traffic import Junction as SimJunction
from loop_detector.agent import DetectorAgent
from loop_detector.settings import DetectorSettings
from signal_controller.agent import SignalAgent
from signal_controller.cabinet import load_junction
from signal_controller.settings import SignalSettings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from edge.agent import Agent
    from edge.clock import Clock

START = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # 08:00 in 岳阳


@dataclass
class ClosedLoop:
    """What runs: the traffic, central, and every node."""

    sim: SumoCoSim
    central: Central
    clock: ManualClock
    agents: list[Agent] = field(default_factory=list)
    cabinets: dict[str, SignalAgent] = field(default_factory=dict)


def start_controller(
    j: SimJunction, stages: list[dict[str, str]], clock: Clock, junction_file: Path
) -> ControllerSim:
    """A junction's controller, wired to its lanes' loops, and its cabinet's file.

    The file is what the cabinet agent reads: the stage table, limits and a
    time-of-day fallback for before central has flows (or while it is away).
    """
    junction_file.write_text(
        json.dumps(
            {
                "id": j.tls,
                "stages": stages,
                "max_cycle_s": 150,
                # its lanes' courses through the junction: the intergreen matrix
                "paths": j.file_paths(),
                # vehicle-actuated on the controller's own loops, 24 s maxima
                "fallback": [
                    {"from": "00:00", "greens": [12] * len(stages), "actuated": True}
                ],
            }
        ),
        encoding="utf-8",
    )
    junction, _ = load_junction(junction_file)
    controller = ControllerSim(junction, clock=clock)
    for lane in j.lanes:
        controller.zones.wire(lane.lane_id, lane.weights(stages))
        controller.lane_groups[lane.lane_id] = lane.groups()  # its stop-line loop
    controller.start()
    return controller


@contextlib.contextmanager
def closed_loop(
    scenario_dir: Path,
    scenario: str,
    *,
    seed: int,
    work: Path,
    demand: str | None = None,
    end_s: int = 5400,
    adaptive: bool = True,
) -> Iterator[ClosedLoop]:
    """Everything up (and torn down after)."""
    clock = ManualClock(START)
    broker = Mosquitto(data_dir=work / "broker")
    broker.start()
    central = Central(
        CentralSettings(
            database_url=f"sqlite:///{work / 'central.sqlite3'}",
            jwt_secret="s" * 40,
            data_dir=work / "central",
            broker_port=broker.port,
            offline_after_s=36_000,
        ),
        clock=clock,
    )
    central.start()
    sim = SumoCoSim(
        scenario_dir, seed=seed, work_dir=work / "sumo", demand=demand, end_s=end_s
    )
    loop = ClosedLoop(sim, central, clock)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    key = public_key_text(central.command_key.public_key())
    net = sumolib.net.readNet(str(sim.net_file))
    stages = STAGES[scenario]
    try:
        for tls, j in sim.junctions.items():
            junction_file = work / f"{tls}.json"
            j.controller = start_controller(j, stages, clock, junction_file)
            cabinet = build_agent(
                SignalAgent,
                SignalSettings(
                    device_id=tls.lower(),
                    kind="signal_controller",
                    data_dir=work / "nodes" / tls,
                    broker_port=broker.port,
                    junction_file=junction_file,
                    controller_url=f"tcp:127.0.0.1:{j.controller.port}",
                    command_keys=[key],
                    central_lost_s=600,
                    controller_silent_s=30,
                    heartbeat_s=30,
                ),
                clock=clock,
            )
            loop.cabinets[tls] = cabinet
            loop.agents.append(cabinet)
            devices = []
            for n, card in enumerate(j.cards, start=1):
                device = f"det-{tls.lower()}-{n}"
                devices.append(device)
                loop.agents.append(
                    build_agent(
                        DetectorAgent,
                        DetectorSettings(
                            device_id=device,
                            kind="loop_detector",
                            data_dir=work / "nodes" / device,
                            broker_port=broker.port,
                            modbus_url=card.path,
                            baudrate=115_200,
                            parity="N",  # a pty carries no parity
                            heartbeat_s=30,
                        ),
                        clock=clock,
                    )
                )
            with Session(central.services.engine) as session:
                now = clock.now()
                registry.register(
                    session, device_id=tls.lower(), kind="signal_controller", now=now
                )
                for device in devices:
                    registry.register(
                        session, device_id=device, kind="loop_detector", now=now
                    )
                session.add(
                    JunctionRow(
                        id=tls.lower(),
                        corridor="arterial" if len(sim.junctions) > 1 else "",
                        position_m=float(net.getNode(tls).getCoord()[0]),
                        stages=len(stages),
                        detectors=j.detectors(devices, stages),
                        adaptive=adaptive,
                    )
                )
                session.commit()
        for agent in loop.agents:
            t = threading.Thread(target=agent.run, args=(stop,), daemon=True)
            t.start()
            threads.append(t)
        sim.start()
        yield loop
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        sim.stop()
        for j in sim.junctions.values():
            if j.controller is not None:
                j.controller.stop()
        central.stop()
        broker.stop()
