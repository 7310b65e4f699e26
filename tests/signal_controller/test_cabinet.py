"""The signal cabinet end to end: central's signed plans, a controller on TCP.

Central, Mosquitto, the cabinet agent and the controller simulator (the
cabinet protocol on a socket). The controller runs ten times faster than
the wall clock, so cycles pass in seconds.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from support.console import sign_in
from support.waiting import wait_until

from central.fleet import registry
from central.messaging.link import CommandTimeoutError
from central.models import Device, Event
from central.operators.auth import create_operator
from central.signals.models import JunctionRow
from edge.clock import ManualClock, SystemClock
from edge.node import build_agent
from edge.protocol.messages import SignalConfig
from edge.protocol.signing import public_key_text
from firmware_sim.detector import DetectorCard
from firmware_sim.signalctl import ControllerSim
from loop_detector.agent import DetectorAgent
from loop_detector.settings import DetectorSettings
from signal_controller.agent import SignalAgent
from signal_controller.cabinet import JunctionFileError, load_junction
from signal_controller.settings import SignalSettings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from central.main import Central

pytestmark = pytest.mark.mqtt
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
STAGES = [
    {"Es": "G", "Er": "G", "Ws": "G", "Wr": "G", "El": "g", "Wl": "g"},
    {"El": "G", "Wl": "G"},
    {"Ns": "G", "Nr": "G", "Ss": "G", "Sr": "G", "Nl": "g", "Sl": "g"},
    {"Nl": "G", "Sl": "G"},
]
JUNCTION = {
    "id": "sig-1",
    "stages": STAGES,
    "fallback": [
        {"from": "00:00", "greens": [10, 5, 8, 5]},
        {"from": "12:00", "greens": [12, 5, 8, 5]},
    ],
}
PASSWORD = "correct horse battery"
GOOD = {"greens": [20, 6, 12, 6], "yellow": 3, "all_red": 1, "offset": 5}


class Fast(SystemClock):
    """The controller's clock: ten seconds pass in one."""

    def monotonic(self) -> float:
        return super().monotonic() * 10


def events(central: Central, type_: str, device: str = "sig-1") -> list[dict[str, Any]]:
    """What a node reported, as central stored it."""
    with Session(central.services.engine) as session:
        rows = session.exec(
            select(Event)
            .where(Event.device == device, Event.type == type_)
            .order_by(col(Event.seq))
        ).all()
        return [dict(r.body) for r in rows]


def answers(central: Central) -> bool:
    try:
        return central.link.command("sig-1", "ping", {}, timeout=1).ok
    except CommandTimeoutError:
        return False


@pytest.fixture
def site(
    make_central: Callable[..., Central],
    sqlite_url: str,
    broker: Any,
    tmp_path: Path,
) -> Iterator[tuple[Central, SignalAgent, ControllerSim]]:
    central = make_central(sqlite_url)
    with Session(central.services.engine) as session:
        registry.register(
            session, device_id="sig-1", kind="signal_controller", now=datetime.now(UTC)
        )
        registry.register(
            session, device_id="det-1", kind="loop_detector", now=datetime.now(UTC)
        )
    junction_file = tmp_path / "junction.json"
    junction_file.write_text(json.dumps(JUNCTION))
    junction, _schedule = load_junction(junction_file)
    controller = ControllerSim(junction, clock=Fast())
    controller.start()
    settings = SignalSettings(
        device_id="sig-1",
        kind="signal_controller",
        data_dir=tmp_path / "node",
        broker_port=broker.port,
        heartbeat_s=1,
        junction_file=junction_file,
        controller_url=f"tcp:127.0.0.1:{controller.port}",
        command_keys=[public_key_text(central.command_key.public_key())],
        central_lost_s=1,
    )
    agent = build_agent(SignalAgent, settings)
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    runner.start()
    assert agent.bus.wait_connected(10)  # type: ignore[attr-defined]
    wait_until(lambda: answers(central))  # subscribed: commands reach it
    yield central, agent, controller
    stop.set()
    runner.join(10)
    controller.stop()


def test_plans_are_checked_applied_at_the_cycle_end_and_reported(
    site: tuple[Central, SignalAgent, ControllerSim],
) -> None:
    central, agent, controller = site
    # no plan from central yet: the time-of-day fallback runs
    wait_until(lambda: controller.plans_applied[:1] in (["fallback-1"], ["fallback-2"]))
    reply = central.link.command("sig-1", "plan", {"version": "p1", "plan": GOOD})
    assert reply.ok, reply.error
    wait_until(lambda: "p1" in controller.plans_applied)
    wait_until(lambda: {"version": "p1", "state": "applied"} in events(central, "plan"))
    # a plan that breaks a rule is refused, naming the rule; the junction keeps p1
    bad = central.link.command(
        "sig-1", "plan", {"version": "p2", "plan": {**GOOD, "yellow": 2}}
    )
    assert not bad.ok
    assert "plan refused by rule yellow" in bad.error
    refused = wait_until(
        lambda: [e for e in events(central, "plan") if e["state"] == "refused"]
    )
    assert refused == [
        {
            "version": "p2",
            "state": "refused",
            "rule": "yellow",
            "detail": "2.0 s is under 3.0 s",
        }
    ]
    # the running state reaches central each second, for the console and cameras
    wait_until(lambda: agent.signal_view().get("plan") == "p1")
    view = agent.signal_view()
    assert view["source"] == "central"
    assert set(view["groups"]) >= {"Ws", "Ns", "Wl"}
    assert view["groups"]["Ws"]["state"] in {"green", "yellow", "red"}


def test_a_plan_with_a_bad_signature_is_refused(
    site: tuple[Central, SignalAgent, ControllerSim],
) -> None:
    central, agent, controller = site
    real = central.link.signer
    central.link.signer = Ed25519PrivateKey.generate()  # not a key the cabinet trusts
    try:
        reply = central.link.command("sig-1", "plan", {"version": "evil", "plan": GOOD})
    finally:
        central.link.signer = real
    assert not reply.ok
    assert agent.central_plan is None
    assert "evil" not in controller.plans_applied


def test_losing_central_falls_back_to_the_schedule_and_back(
    site: tuple[Central, SignalAgent, ControllerSim],
) -> None:
    central, agent, controller = site
    assert central.link.command("sig-1", "plan", {"version": "p1", "plan": GOOD}).ok
    wait_until(lambda: "p1" in controller.plans_applied)
    agent.bus.stop()  # the cabinet's link to central is cut
    wait_until(lambda: controller.plans_applied[-1].startswith("fallback"), timeout=30)
    agent.bus.start()
    wait_until(lambda: controller.plans_applied[-1] == "p1", timeout=30)


def test_conflicting_greens_put_the_junction_to_flashing_yellow(
    site: tuple[Central, SignalAgent, ControllerSim],
) -> None:
    central, agent, controller = site
    controller.fault_conflict = True  # a failing load switch
    wait_until(lambda: agent.latched)
    assert "conflicting greens" in agent.latched
    wait_until(lambda: controller.mode.name == "FLASH")
    assert "conflict_monitor" in agent.faults()
    controller.fault_conflict = False
    # it stays flashing until an authorised operator returns it to plan
    time.sleep(1.5)
    assert controller.mode.name == "FLASH"
    reply = central.link.command("sig-1", "mode", {"mode": "plan", "operator": "李工"})
    assert reply.ok, reply.error
    wait_until(lambda: controller.mode.name == "PLAN")
    wait_until(lambda: {"mode": "plan", "operator": "李工"} in events(central, "mode"))
    unsigned_operator = central.link.command("sig-1", "mode", {"mode": "flash"})
    assert not unsigned_operator.ok
    assert "an operator" in unsigned_operator.error


def test_a_controller_that_cannot_honour_a_plan_trips_the_cabinet(
    site: tuple[Central, SignalAgent, ControllerSim],
) -> None:
    central, agent, controller = site
    wait_until(lambda: controller.plans_applied)  # the fallback runs
    controller.refuse_plans = True
    assert central.link.command("sig-1", "plan", {"version": "p9", "plan": GOOD}).ok
    wait_until(lambda: agent.latched)
    assert "cannot honour" in agent.latched
    wait_until(lambda: controller.mode.name == "FLASH")
    failed = wait_until(
        lambda: [e for e in events(central, "plan") if e["state"] == "failed"]
    )
    assert failed[0]["version"] == "p9"


def test_a_cabinet_defers_updates_in_its_peak_hours(tmp_path: Path) -> None:
    junction_file = tmp_path / "junction.json"
    junction_file.write_text(json.dumps(JUNCTION))
    clock = ManualClock(datetime(2026, 11, 30, 0, 30, tzinfo=UTC))  # 08:30 in 岳阳
    agent = build_agent(
        SignalAgent,
        SignalSettings(
            device_id="sig-2",
            kind="signal_controller",
            data_dir=tmp_path / "node",
            junction_file=junction_file,
            controller_url="tcp:127.0.0.1:9",
        ),
        clock=clock,
    )
    try:
        agent.config = SignalConfig(peak_windows=["07:00-09:00", "17:00-19:00"])
        assert agent.update_deferral() == "peak hours 07:00-09:00 at this junction"
        clock.advance(timedelta(hours=2).total_seconds())  # 10:30
        assert agent.update_deferral() is None
        clock.advance(timedelta(hours=8).total_seconds())  # 18:30
        assert agent.update_deferral() == "peak hours 17:00-19:00 at this junction"
    finally:
        agent.link.stop()
        agent.outbox.close()
        agent.trust.close()


def test_a_junction_file_with_an_unsafe_fallback_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    path.write_text(
        json.dumps(
            {**JUNCTION, "fallback": [{"from": "00:00", "greens": [2, 5, 8, 5]}]}
        )
    )
    with pytest.raises(JunctionFileError, match="min_green"):
        load_junction(path)
    path.write_text(json.dumps({**JUNCTION, "stages": [{"Ws": "G", "Ns": "G"}]}))
    with pytest.raises(JunctionFileError, match="conflict"):
        load_junction(path)


def test_the_traffic_centre_computes_pushes_and_rolls_back_from_measured_flows(
    site: tuple[Central, SignalAgent, ControllerSim], tmp_path: Path
) -> None:
    """Detector card → detector node → MQTT → central → plan → cabinet → controller."""
    central, _agent, controller = site
    card = DetectorCard(4)
    card.start()
    clock = ManualClock(datetime.now(UTC) - timedelta(minutes=5))
    detector = build_agent(
        DetectorAgent,
        DetectorSettings(
            device_id="det-1",
            kind="loop_detector",
            data_dir=tmp_path / "det",
            broker_port=central.settings.broker_port,
            modbus_url=card.path,
            baudrate=115_200,
            parity="N",  # a pty line carries no parity (firmware_sim.detector)
        ),
        clock=clock,
    )
    detector.bus.start()
    try:
        for second in range(185):  # three minutes: the main road is busy
            if second % 4 == 0:
                card.vehicle(1)
            if second % 30 == 0:
                card.vehicle(2)
            if second % 12 == 0:
                card.vehicle(3)
            if second % 45 == 0:
                card.vehicle(4)
            detector.tick()
            clock.advance(1)
        wait_until(lambda: len(events(central, "detector", device="det-1")) >= 3)
    finally:
        detector._shutdown()
        card.stop()
    with Session(central.services.engine) as session:
        create_operator(
            session,
            username="tc",
            password=PASSWORD,
            role="traffic",
            now=datetime.now(UTC),
        )
    client = TestClient(central.app)
    token = client.post(
        "/api/v1/auth/token", data={"username": "tc", "password": PASSWORD}
    ).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    lanes = {"1": [0, 1800], "2": [1, 1800], "3": [2, 1800], "4": [3, 1800]}
    put = client.put(
        "/api/v1/signals/junctions/sig-1",
        headers=auth,
        json={"name": "建设路/巴陵大道", "detectors": {"det-1": lanes}},
    )
    assert put.status_code == 200, put.text
    (junction,) = client.get("/api/v1/signals/junctions", headers=auth).json()
    flows = junction["stage_flows_vph"]
    assert flows[0] > flows[2] > flows[3] > 0  # what the loops counted
    first = client.post(
        "/api/v1/signals/junctions/sig-1/compute",
        headers=auth,
        json={"method": "webster"},
    ).json()
    assert first["state"] == "proposed"
    assert first["plan"]["greens"][0] == max(first["plan"]["greens"])
    pushed = client.post(
        f"/api/v1/signals/plans/{first['id']}/push", headers=auth
    ).json()
    assert pushed["state"] in {"accepted", "applied"}, pushed
    wait_until(lambda: first["version"] in controller.plans_applied)
    second = client.post(
        "/api/v1/signals/junctions/sig-1/compute",
        headers=auth,
        json={"method": "optimise"},
    ).json()
    assert client.post(
        f"/api/v1/signals/plans/{second['id']}/push", headers=auth
    ).json()["state"] in {"accepted", "applied"}
    wait_until(lambda: second["version"] in controller.plans_applied)
    back = client.post("/api/v1/signals/junctions/sig-1/rollback", headers=auth).json()
    assert back["method"] == "rollback"
    assert back["plan"] == first["plan"]
    wait_until(lambda: back["version"] in controller.plans_applied)
    history = client.get("/api/v1/signals/junctions/sig-1/plans", headers=auth).json()
    assert [h["method"] for h in history] == ["rollback", "optimise", "webster"]
    wait_until(
        lambda: (
            client.get("/api/v1/signals/junctions/sig-1/plans", headers=auth).json()[0][
                "state"
            ]
            == "applied"
        )
    )


def test_the_traffic_console_computes_pushes_and_shows_the_cabinet_s_answer(
    site: tuple[Central, SignalAgent, ControllerSim],
    serve_app: Callable[..., str],
    browser_page: Any,
) -> None:
    central, _agent, controller = site
    base = serve_app(central.app)
    with Session(central.services.engine) as session:
        create_operator(
            session,
            username="tc",
            password=PASSWORD,
            role="traffic",
            now=datetime.now(UTC),
        )
        session.add(JunctionRow(id="sig-1", name="建设路/巴陵大道"))
        cabinet = session.get(Device, "sig-1")
        assert cabinet is not None
        cabinet.lat, cabinet.lon = 29.1451, 113.1235  # on the shipped map
        session.add(cabinet)
        session.commit()
    page = browser_page
    page.goto(f"{base}/console/#signals")
    sign_in(page, "tc", PASSWORD)
    page.wait_for_selector("#live.on")
    page.click("tr[data-junction=sig-1]")
    # the cabinet's running phase arrives each second: row, signal heads, map
    page.wait_for_selector(
        "#jd-running:has-text('按方案运行'), #jd-running:has-text('阶段')"
    )
    page.wait_for_selector("#jd-heads td.lamp.green")
    page.wait_for_selector("#jd-heads td.lamp.red")
    assert "阶段" in page.inner_text("tr[data-junction=sig-1] .phase")
    page.wait_for_selector("#signals-map .junction-dot.plan[data-junction=sig-1]")
    page.click("button[data-compute=optimise]")
    page.wait_for_selector("#signals-msg:has-text('已计算 sig-1-1')")
    page.click("#plan-rows button:has-text('推送')")
    page.wait_for_selector("#signals-msg:has-text('sig-1-1：')")  # the cabinet answered
    # the cabinet applies it at the controller's cycle end; the page hears it live
    page.wait_for_selector("#plan-rows .plan-applied", timeout=30_000)
    assert "sig-1-1" in controller.plans_applied
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-signals.png"), full_page=True)
