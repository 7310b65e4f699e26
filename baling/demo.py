"""The demo world of ``baling up``: a squad of officers on the 荣家湾 map.

A street camera (``camera-1``) on 建设路 reads the passing traffic from the
camera simulator's spool; one of the cars is on the suspect list. Three
handhelds, each with a GNSS receiver simulator on a pty (one walks a
loop inside 城东责任区, one walks along 建设路, one drives 荣家湾大道) and an
SOS pin under its data directory; the officers, their unit and the two beats
of the shipped map are put into central's database once.

The crossing of 建设路 and 荣家湾大道 has signals: Eclipse SUMO drives real
traffic through it in real time (Baling's own crossing scenario), its loops
feed two detector cards (Modbus RTU on ptys) read by two detector nodes, and
its lights follow a simulated controller that the cabinet node (``jsl``)
drives over the cabinet protocol — the whole signal chain of
:mod:`baling.closedloop`, with the nodes as real processes.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, select

from central.complaints.models import ContentItem, Department, ServiceType, Slot
from central.plates.models import Suspect
from central.police.models import Beat, Officer
from central.signals.models import JunctionRow
from edge.clock import ManualClock
from firmware_sim.camera import SceneCamera, Vehicle
from firmware_sim.gnss import GnssSimulator, Pty, Route, load_map, open_pty

if TYPE_CHECKING:
    from firmware_sim.traffic import SumoCoSim

logger = logging.getLogger(__name__)

LAT0, LON0 = 29.145, 113.118
KM_LAT, KM_LON = 0.009, 0.0103


def _at(x_km: float, y_km: float) -> tuple[float, float]:
    return LON0 + x_km * KM_LON, LAT0 + y_km * KM_LAT


OFFICERS = [
    # device, name, badge, leader, beat name
    ("handheld-1", "王警官", "043101", False, "城东责任区"),
    ("handheld-2", "李警官", "043102", False, "城西责任区"),
    ("handheld-3", "赵队长", "043100", True, None),
]
UNIT = "巡逻一中队"
CAMERA = "camera-1"
CAMERA_AT = (LAT0 + 0.1 * KM_LAT, LON0 + 0.5 * KM_LON)  # 建设路, east of the centre
LISTED = "湘FD4439"  # a stolen car that passes every third vehicle
CROSSING = Path(__file__).resolve().parents[1] / "firmware_sim/scenarios/crossing"
JUNCTION = "jsl"  # the crossing's cabinet (its SUMO traffic light's id)
JUNCTION_NAME = "建设路/荣家湾大道"
JUNCTION_AT = (LAT0, LON0)
DEMO_DAY_S = 86_400  # the crossing's morning-peak demand, kept up for a day


def routes() -> dict[str, Route]:
    """Where each demo officer goes.

    Close enough together that an SOS from any of them reaches the others
    (R is 2 km).
    """
    loop = [
        _at(0.4, -0.4),
        _at(1.2, -0.4),
        _at(1.2, 0.4),
        _at(0.4, 0.4),
        _at(0.4, -0.4),
    ]
    return {
        "handheld-1": Route(points=tuple(loop), speed_mps=1.4),
        "handheld-2": Route(points=(_at(-0.3, 0.0), _at(0.9, 0.0)), speed_mps=1.4),
        "handheld-3": Route(points=(_at(0.0, -0.8), _at(0.0, 0.8)), speed_mps=8.0),
    }


def sos_pin(data_dir: Path, device_id: str) -> Path:
    """The simulated SOS pin of a demo handheld."""
    return data_dir / "nodes" / device_id / "sos.pin"


def start_receivers(stop: threading.Event) -> dict[str, Pty]:
    """Start one GNSS receiver simulator per demo handheld; return their ptys."""
    out = {}
    for n, (device, route) in enumerate(routes().items()):
        pty = open_pty()
        sim = GnssSimulator(route, talker=("GN", "BD", "GP")[n % 3], seed=n)
        threading.Thread(
            target=sim.run, args=(pty.master, stop), name=f"gnss-{device}", daemon=True
        ).start()
        out[device] = pty
    return out


def set_up_police(session: Session, *, now: datetime) -> None:
    """Officers and beats of the demo, unless they are there already."""
    beats = {b.name: b for b in session.exec(select(Beat)).all()}
    features = load_map()["features"]
    assert isinstance(features, list)  # noqa: S101 - our own file
    for feature in features:
        props = feature["properties"]
        if props.get("kind") == "beat" and props["name"] not in beats:
            beat = Beat(
                name=props["name"],
                unit=props.get("unit", ""),
                geometry=feature["geometry"],
                shifts=[{"days": list(range(7)), "start": "07:00", "end": "23:00"}],
                buffer_m=30.0,
                updated_at=now,
            )
            session.add(beat)
            beats[beat.name] = beat
    session.flush()
    for device, name, badge, leader, beat_name in OFFICERS:
        if session.get(Officer, device) is not None:
            continue
        beat_id = beats[beat_name].id if beat_name else None
        session.add(
            Officer(
                device=device,
                name=name,
                badge=badge,
                unit=UNIT,
                leader=leader,
                beat_id=beat_id,
            )
        )
    session.commit()


def camera_spool(data_dir: Path) -> Path:
    """Where the demo camera's simulator drops its frames."""
    return data_dir / "nodes" / CAMERA / "spool"


def start_traffic(
    data_dir: Path, stop: threading.Event, *, every_s: float = 8.0
) -> None:
    """Vehicles past the demo camera until ``stop``: every third one is listed."""
    camera = SceneCamera(camera_spool(data_dir), seed=7)

    def run() -> None:
        n = 0
        while not stop.wait(every_s):
            n += 1
            listed = Vehicle(LISTED, "blue", frames=4)
            camera.drive(listed if n % 3 == 0 else camera.random_vehicle(), gap_s=0.2)

    threading.Thread(target=run, name="traffic", daemon=True).start()


def set_up_plates(session: Session, *, now: datetime) -> None:
    """The demo suspect list: one stolen car."""
    if session.exec(select(Suspect).where(Suspect.plate == LISTED)).first() is None:
        session.add(
            Suspect(
                plate=LISTED,
                category="stolen",
                note="演示：2026-11 被盗",
                valid_from=now,
                added_by="demo",
                added_at=now,
            )
        )
        session.commit()


DEPARTMENTS = [("cgj", "县城管局"), ("hbj", "县生态环境局"), ("jtj", "县交通运输局")]
SERVICES = [
    ("noise", "噪音扰民", "投诉", "hbj", 5),
    ("road", "道路破损", "举报", "jtj", 10),
    ("street", "占道经营", "投诉", "cgj", 5),
]
CONTENT: list[tuple[str, str, str, dict[str, Any]]] = [
    ("notice", "关于冬季集中供暖的通知", "12月1日起县城集中供暖，报修电话 12345。", {}),
    (
        "notice",
        "荣家湾镇政务公开：2026年民生实事",
        "新建城区公厕12座、改造老旧小区8个。",
        {},
    ),
    (
        "guide",
        "户籍办理",
        "户口迁移、新生儿落户，工作日到县政务服务中心办理。",
        {"documents": ["身份证", "户口簿", "出生医学证明"]},
    ),
    (
        "guide",
        "不动产登记",
        "首次登记与转移登记。",
        {"documents": ["身份证", "不动产权证书"]},
    ),
    ("place", "荣家湾广场", "建设路与站前路交叉口", {"address": "建设路1号"}),
    (
        "place",
        "县政务服务中心",
        "受理户籍、不动产、社保等事项",
        {"address": "建设路88号"},
    ),
    ("utility", "停水通知：站前路", "12月3日 9:00-17:00 管网检修。", {}),
    ("utility", "国家电网营业厅", "缴费与报修", {"address": "新墙河路12号"}),
]


def set_up_complaints(session: Session, *, now: datetime) -> None:
    """Departments, request types, kiosk content and appointment slots."""
    if session.get(Department, "cgj") is not None:
        return
    for code, name in DEPARTMENTS:
        session.add(Department(code=code, name=name, members=["admin"]))
    for code, name, group, dept, days in SERVICES:
        session.add(
            ServiceType(
                code=code, name=name, group=group, department=dept, limit_days=days
            )
        )
    for kind, title, body, extra in CONTENT:
        session.add(
            ContentItem(kind=kind, title=title, body=body, extra=extra, updated_at=now)
        )
    day = now.replace(hour=1, minute=0, second=0, microsecond=0)  # 09:00 in 岳阳
    for d in range(1, 6):
        for service in ("户籍办理", "不动产登记"):
            session.add(
                Slot(
                    centre="县政务服务中心",
                    service=service,
                    starts_at=day + timedelta(days=d),
                )
            )
    session.commit()


@dataclass
class Street:
    """The demo crossing's simulated hardware, for the nodes' settings."""

    controller_url: str
    junction_file: Path
    cards: dict[str, str]  # detector node -> its card's serial port
    detectors: dict[str, Any]  # central's map: card -> lane -> [stage, sat, approach]
    sim: SumoCoSim


def start_street(data_dir: Path, stop: threading.Event) -> Street:
    """SUMO's traffic through the demo crossing, in real time, until ``stop``."""
    from baling.closedloop import start_controller  # noqa: PLC0415
    from firmware_sim.traffic import STAGES, SumoCoSim  # noqa: PLC0415

    work = data_dir / "traffic"
    work.mkdir(parents=True, exist_ok=True)
    routes = work / "routes.rou.xml"
    routes.write_text(
        (CROSSING / "routes.rou.xml")
        .read_text(encoding="utf-8")
        .replace('end="3600"', f'end="{DEMO_DAY_S}"'),
        encoding="utf-8",
    )
    sim = SumoCoSim(CROSSING, seed=1, work_dir=work, routes=routes, end_s=DEMO_DAY_S)
    clock = ManualClock(datetime.now(UTC))  # SUMO's time, paced to the wall clock
    j = sim.junctions[JUNCTION]
    stages = STAGES["A"]
    controller = start_controller(j, stages, clock, work / f"{JUNCTION}.json")
    j.controller = controller
    cards = {f"det-{JUNCTION}-{n}": card.path for n, card in enumerate(j.cards, 1)}

    def run() -> None:
        try:
            sim.start()
            sim.run(clock, speed=1.0, stop=stop)
        except Exception:  # the rest of the demo goes on without traffic
            logger.exception("The demo's SUMO traffic stopped")
        finally:
            sim.stop()
            controller.stop()

    threading.Thread(target=run, name="sumo", daemon=True).start()
    return Street(
        controller_url=f"tcp:127.0.0.1:{controller.port}",
        junction_file=work / f"{JUNCTION}.json",
        cards=cards,
        detectors=j.detectors(list(cards), stages),
        sim=sim,
    )


def set_up_signals(session: Session, street: Street) -> None:
    """The demo junction and its detectors' lanes, unless it is there already."""
    if session.get(JunctionRow, JUNCTION) is None:
        session.add(
            JunctionRow(
                id=JUNCTION,
                name=JUNCTION_NAME,
                stages=4,
                detectors=street.detectors,
                adaptive=False,  # the operator computes and pushes plans
            )
        )
        session.commit()
