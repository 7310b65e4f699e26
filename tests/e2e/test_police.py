"""Police journeys on a real broker: SOS, cancel, escalation, dispatch, beats.

Central runs in-process on a fresh Mosquitto; each handheld is the real
agent with its real link and outbox, reading NMEA from a GNSS simulator on
a pty and its SOS button from the simulator pin. Officers stand at fixed
places: 王 (the caller), 李 300 m away, 赵 5 km away (the unit leader).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from support.console import sign_in
from support.waiting import wait_until

from central.fleet import registry
from central.models import AuditRecord
from central.operators.auth import create_operator
from central.police.models import Alarm, Officer, Receipt
from edge.node import build_agent
from edge.protocol.messages import HandheldConfig
from edge.protocol.signing import public_key_text
from firmware_sim.gnss import GnssSimulator, Noise, Pty, open_pty, walking
from firmware_sim.sospin import set_level
from handheld.agent import HandheldAgent
from handheld.settings import HandheldSettings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from baling.broker import Mosquitto
    from central.main import Central

LAT, LON = 29.145, 113.118
M_LAT = 1 / 110_850
PLACES = {
    "hh-wang": (LAT, LON),
    "hh-li": (LAT + 300 * M_LAT, LON),
    "hh-zhao": (LAT + 5000 * M_LAT, LON),
}
PASSWORD = "correct horse battery"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
QUIET = Noise(jitter_m=1.0, poor_rate=0.0, dropout_rate=0.0, corrupt_rate=0.0)
FAST = HandheldConfig(
    report_standing_s=1.0, sos_hold_s=0.5, sos_cancel_s=5.0, sos_retry_s=1.0
)


@dataclass
class Handheld:
    agent: HandheldAgent
    sim: GnssSimulator
    pty: Pty
    pin: Path
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def press(self, hold_s: float = 0.8) -> None:
        set_level(self.pin, pressed=True)
        time.sleep(hold_s)
        set_level(self.pin, pressed=False)

    def inbox(self, kind: str) -> list[dict[str, Any]]:
        return [i for i in self.agent.inbox if i["kind"] == kind]


@dataclass
class Precinct:
    central: Central
    broker: Mosquitto
    handhelds: dict[str, Handheld]
    api: TestClient
    headers: dict[str, str]

    def alarms(self, **where: object) -> list[Alarm]:
        with Session(self.central.services.engine) as session:
            rows = session.exec(select(Alarm)).all()
            return [
                a for a in rows if all(getattr(a, k) == v for k, v in where.items())
            ]


@pytest.fixture
def precinct(
    broker: Mosquitto, make_central: Callable[..., Central], tmp_path: Path
) -> Iterator[Precinct]:
    central = make_central(
        f"sqlite:///{tmp_path / 'central.sqlite3'}",
        police_sos_escalate_s=3.0,
        police_sos_repeat_s=1.0,
        police_sos_delayed_s=2.0,
    )
    key = public_key_text(central.command_key.public_key())
    now = central.clock.now()
    with Session(central.services.engine) as session:
        create_operator(
            session, username="cmd", password=PASSWORD, role="police", now=now
        )
        for device in PLACES:
            registry.register(
                session, device_id=device, kind="handheld", site="rjw", now=now
            )
        for device, name, leader in [
            ("hh-wang", "王警官", False),
            ("hh-li", "李警官", False),
            ("hh-zhao", "赵队长", True),
        ]:
            session.add(Officer(device=device, name=name, unit="一中队", leader=leader))
        session.commit()
    handhelds: dict[str, Handheld] = {}
    for device, (lat, lon) in PLACES.items():
        pty = open_pty()
        pin = tmp_path / f"{device}.pin"
        settings = HandheldSettings(
            device_id=device,
            kind="handheld",
            data_dir=tmp_path / device,
            broker_port=broker.port,
            heartbeat_s=1.0,
            command_keys=[key],
            require_signed_commands=True,
            gnss_url=pty.path,
            sos_button=f"file:{pin}",
        )
        agent = build_agent(HandheldAgent, settings)
        agent.config = FAST
        sim = GnssSimulator(walking(), noise=QUIET, seed=1, rate_hz=2)
        sim.hold = (lat, lon)
        hh = Handheld(agent=agent, sim=sim, pty=pty, pin=pin)
        hh.threads = [
            threading.Thread(target=sim.run, args=(pty.master, hh.stop), daemon=True),
            threading.Thread(target=agent.run, args=(hh.stop,), daemon=True),
        ]
        for t in hh.threads:
            t.start()
        handhelds[device] = hh
    with TestClient(central.app) as api:
        r = api.post(
            "/api/v1/auth/token", data={"username": "cmd", "password": PASSWORD}
        )
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        place = Precinct(central, broker, handhelds, api, headers)

        def everyone_placed() -> bool:
            return len(
                place.api.get("/api/v1/police/officers", headers=headers).json()
            ) == 3 and all(
                o["lat"] is not None
                for o in place.api.get(
                    "/api/v1/police/officers", headers=headers
                ).json()
            )

        wait_until(everyone_placed)
        yield place
    for hh in handhelds.values():
        hh.stop.set()
    for hh in handhelds.values():
        for t in hh.threads:
            t.join(timeout=10)
        hh.pty.close()


def test_sos_reaches_nearby_officer_and_command_closes_the_loop(
    precinct: Precinct,
) -> None:
    wang, li, zhao = (precinct.handhelds[d] for d in PLACES)
    wang.press()
    alarm = wait_until(lambda: precinct.alarms(kind="sos"))[0]
    assert alarm.device == "hh-wang"
    assert not alarm.delayed
    assert [a["device"] for a in alarm.alerted] == ["hh-li"]  # 赵 is 5 km away
    alert = wait_until(lambda: li.inbox("sos"))[0]
    assert alert["about"] == "hh-wang"
    assert 250 < alert["distance_m"] < 350
    assert zhao.inbox("sos") == []
    screen = wait_until(
        lambda: (
            wang.agent.sos if wang.agent.sos and wang.agent.sos["answered"] else None
        )
    )
    assert screen["phase"] == "raised"
    assert screen["text"] == "求救已送达指挥中心"

    api, h = precinct.api, precinct.headers
    listed = api.get("/api/v1/police/alarms", headers=h).json()
    assert [a["kind"] for a in listed] == ["sos"]
    r = api.post(f"/api/v1/police/alarms/{alarm.id}/resolve", json={}, headers=h)
    assert r.status_code == 409
    assert "raised cannot become resolved" in r.json()["detail"]
    assert (
        api.post(
            f"/api/v1/police/alarms/{alarm.id}/acknowledge", json={}, headers=h
        ).status_code
        == 200
    )
    wait_until(lambda: wang.agent.sos and wang.agent.sos["phase"] == "acknowledged")
    r = api.post(
        f"/api/v1/police/alarms/{alarm.id}/assign",
        json={"responders": ["hh-li"]},
        headers=h,
    )
    assert r.json()["responders"] == ["hh-li"]
    order = wait_until(lambda: li.inbox("message"))[0]
    assert "王警官" in order["text"]
    li.agent.acknowledge(order["id"])

    def acked() -> bool:
        with Session(precinct.central.services.engine) as session:
            receipt = session.get(Receipt, (order["id"], "hh-li"))
            return receipt is not None and receipt.acked_at is not None

    wait_until(acked)
    wait_until(lambda: wang.agent.sos and wang.agent.sos["phase"] == "assigned")
    assert wang.agent.sos is not None
    assert wang.agent.sos["responders"] == ["hh-li"]
    r = api.post(
        f"/api/v1/police/alarms/{alarm.id}/resolve", json={"note": "已处置"}, headers=h
    )
    assert r.json()["state"] == "resolved"
    wait_until(lambda: wang.agent.sos and wang.agent.sos["phase"] == "resolved")
    with Session(precinct.central.services.engine) as session:
        actions = [r.action for r in session.exec(select(AuditRecord)).all()]
    assert {"alarm.acknowledged", "alarm.assigned", "alarm.resolved"} <= set(actions)


def test_sos_during_broker_outage_is_delivered_later_and_marked_delayed(
    precinct: Precinct,
) -> None:
    wang = precinct.handhelds["hh-wang"]
    precinct.broker.stop()
    try:
        wait_until(lambda: not wang.agent.bus.connected)
        wang.press()
        assert wait_until(lambda: wang.agent.sos)["phase"] == "raised"
        time.sleep(2.5)  # longer than police_sos_delayed_s
        assert precinct.alarms(kind="sos") == []
    finally:
        precinct.broker.start()
    alarm = wait_until(lambda: precinct.alarms(kind="sos"), timeout=30)[0]
    assert alarm.delayed
    assert len(precinct.alarms(kind="sos")) == 1  # retries did not make a second one
    wait_until(lambda: wang.agent.sos and wang.agent.sos["answered"], timeout=20)


def test_cancel_within_the_window_stands_everyone_down(precinct: Precinct) -> None:
    wang, li = precinct.handhelds["hh-wang"], precinct.handhelds["hh-li"]
    wang.press()
    wait_until(lambda: li.inbox("sos"))
    time.sleep(0.5)  # the thumb leaves the button before pressing again
    wang.press(hold_s=0.3)  # a short press within 5 s cancels
    alarm = wait_until(lambda: precinct.alarms(kind="sos", state="cancelled"))[0]
    assert alarm.closed_by == "hh-wang"
    wait_until(lambda: len(li.inbox("sos")) == 2)  # the alert, then the stand-down
    assert "取消" in li.inbox("sos")[-1]["text"]
    wait_until(lambda: wang.agent.sos and wang.agent.sos["phase"] == "cancelled")


def test_unacknowledged_sos_repeats_and_escalates_to_the_leader(
    precinct: Precinct,
) -> None:
    wang, zhao = precinct.handhelds["hh-wang"], precinct.handhelds["hh-zhao"]
    wang.press()
    wait_until(lambda: precinct.alarms(kind="sos"))
    assert zhao.inbox("sos") == []
    escalated = wait_until(
        lambda: [a for a in precinct.alarms(kind="sos") if a.escalated_at is not None],
        timeout=10,
    )[0]
    assert escalated.repeats >= 2
    assert escalated.detail["leaders"] == ["hh-zhao"]
    wait_until(lambda: zhao.inbox("sos"))


def test_leaving_the_beat_alarms_the_officer(precinct: Precinct) -> None:
    wang = precinct.handhelds["hh-wang"]
    d = 200 * M_LAT
    square = [
        [LON - d, LAT - d],
        [LON + d, LAT - d],
        [LON + d, LAT + d],
        [LON - d, LAT + d],
        [LON - d, LAT - d],
    ]
    api, h = precinct.api, precinct.headers
    beat = {
        "name": "城东责任区",
        "unit": "一中队",
        "geometry": {"type": "Polygon", "coordinates": [square]},
        "shifts": [{"days": list(range(7)), "start": "00:00", "end": "23:59"}],
        "buffer_m": 20,
    }
    r = api.post(
        "/api/v1/police/beats", json={**beat, "geometry": {"type": "Point"}}, headers=h
    )
    assert r.status_code == 422
    created = api.post("/api/v1/police/beats", json=beat, headers=h).json()
    r = api.put(
        "/api/v1/police/officers/hh-wang",
        json={"name": "王警官", "unit": "一中队", "beat_id": created["id"]},
        headers=h,
    )
    assert r.status_code == 200
    time.sleep(1.5)
    assert precinct.alarms(kind="beat_exit") == []
    wang.sim.hold = (LAT + 600 * M_LAT, LON)  # 400 m outside
    alarm = wait_until(lambda: precinct.alarms(kind="beat_exit"))[0]
    assert alarm.device == "hh-wang"
    wait_until(lambda: wang.inbox("beat_exit"))
    wang.sim.hold = (LAT, LON)
    wait_until(lambda: precinct.alarms(kind="beat_exit", state="resolved"))


def test_messages_lookups_and_reports(precinct: Precinct) -> None:
    api, h = precinct.api, precinct.headers
    li = precinct.handhelds["hh-li"]
    sent = api.post(
        "/api/v1/police/messages",
        json={
            "text": "全体注意：站前路临时管制",
            "audience": "group",
            "target": "一中队",
        },
        headers=h,
    )
    assert sent.status_code == 201
    message = sent.json()
    assert {r["device"] for r in message["receipts"]} == set(PLACES)
    wait_until(lambda: li.inbox("message"))

    def received_by_all() -> bool:
        listed = api.get("/api/v1/police/messages", headers=h).json()[0]
        return all(r["received_at"] for r in listed["receipts"])

    wait_until(received_by_all)
    r = api.post(
        "/api/v1/police/messages",
        json={"text": "x", "audience": "group", "target": "无此中队"},
        headers=h,
    )
    assert r.status_code == 422

    refused = li.agent.lookup("vehicle", "湘F12345", "no")
    answered = li.agent.lookup(
        "person", "430621199001011234", "盘查可疑人员，现场核验身份"
    )
    wait_until(
        lambda: "ok" in li.agent.lookups[refused] and "ok" in li.agent.lookups[answered]
    )
    assert li.agent.lookups[refused]["ok"] is False
    assert "reason" in li.agent.lookups[refused]["error"]
    assert li.agent.lookups[answered]["ok"] is True

    def audited() -> list[str]:
        with Session(precinct.central.services.engine) as session:
            return [
                r.action
                for r in session.exec(select(AuditRecord)).all()
                if r.action.startswith("lookup")
            ]

    assert sorted(wait_until(lambda: len(audited()) == 2 and audited())) == [
        "lookup",
        "lookup.refused",
    ]

    # The handheld keeps reporting: read both reports up to a fix already stored.
    stored = api.get(
        "/api/v1/police/reports/route",
        params={
            "deviceId": "hh-li",
            "from": "2020-01-01T00:00:00Z",
            "to": "2100-01-01T00:00:00Z",
        },
        headers=h,
    ).json()
    assert stored
    last = datetime.fromisoformat(stored[-1]["fixTime"])
    until = (last + timedelta(milliseconds=1)).isoformat()
    route = api.get(
        "/api/v1/police/reports/route",
        params={"deviceId": "hh-li", "from": "2020-01-01T00:00:00Z", "to": until},
        headers=h,
    ).json()
    assert len(route) >= 1
    assert route[0]["deviceId"] == "hh-li"
    summary = api.get(
        "/api/v1/police/reports/summary",
        params={"deviceId": "hh-li", "from": "2020-01-01T00:00:00Z", "to": until},
        headers=h,
    ).json()
    assert summary["fixes"] == len(route)


def test_a_phone_app_reports_with_its_issued_identifier(precinct: Precinct) -> None:
    """A stock phone app (OsmAnd protocol) as a handheld: knots, alarm=sos."""
    api, h = precinct.api, precinct.headers
    with Session(precinct.central.services.engine) as session:
        registry.register(
            session,
            device_id="phone-1",
            kind="handheld",
            site="rjw",
            now=precinct.central.clock.now(),
        )

    def fix(identifier: str, **extra: str | float) -> int:
        params = {"id": identifier, "lat": LAT, "lon": LON, **extra}
        return api.get("/osmand", params=params).status_code

    # The phone sends a secret identifier issued for its handheld, never the
    # guessable device id; only its hash is stored. Unknown: 400, as Traccar.
    assert fix("phone-1") == 400
    issue = "/api/v1/police/officers/phone-1/osmand"
    phone_id = api.post(issue, headers=h).json()["identifier"]
    assert len(phone_id) >= 24
    now = str(int(time.time()))
    assert fix(phone_id, lat=LAT + 0.01, speed="10", timestamp=now, batt="76") == 200
    phone = next(
        o
        for o in api.get("/api/v1/police/officers", headers=h).json()
        if o["device"] == "phone-1"
    )
    assert phone["lat"] == pytest.approx(LAT + 0.01)
    assert phone["speed_mps"] == pytest.approx(5.14, abs=0.01)
    r = api.post(
        "/osmand", params={"id": phone_id, "lat": LAT, "lon": LON, "alarm": "sos"}
    )
    assert r.status_code == 200
    sos = precinct.alarms(kind="sos", device="phone-1")[0]
    assert "hh-wang" in [a["device"] for a in sos.alerted]
    assert fix("nobody") == 400
    assert fix(phone_id, lat="north") == 400

    # Issuing again replaces the identifier; revoking ends it; both audited.
    again = api.post(issue, headers=h).json()["identifier"]
    assert fix(phone_id) == 400
    assert fix(again) == 200
    assert api.delete(issue, headers=h).status_code == 204
    assert fix(again) == 400
    assert api.delete(issue, headers=h).status_code == 404
    nobody = "/api/v1/police/officers/cam-9/osmand"
    assert api.post(nobody, headers=h).status_code == 404
    with Session(precinct.central.services.engine) as session:
        actions = [r.action for r in session.exec(select(AuditRecord)).all()]
    assert actions.count("osmand.issue") == 2
    assert actions.count("osmand.revoke") == 1


def phone_card_shows_battery(precinct: Precinct, page: Any, identifier: str) -> None:
    """Traccar Client 9's JSON: the officer's card shows battery and "heard"."""
    client9 = {
        "location": {
            "timestamp": datetime.now(UTC).isoformat(),
            "coords": {"latitude": LAT, "longitude": LON, "accuracy": 12},
            "battery": {"level": 0.5, "is_charging": False},
        },
        "device_id": identifier,
    }
    assert precinct.api.post("/osmand", json=client9).status_code == 200
    card = "#police-officers .officer[data-device=hh-li] .officer-card"
    page.wait_for_function(
        f"(document.querySelector('{card}') || {{}}).textContent?.includes('电量 50%')"
    )
    assert "手机 · 最后上报" in (page.text_content(card) or "")
    page.screenshot(path=str(ARTIFACTS / "police-phone.png"), full_page=True)


def dispatch_by_name(precinct: Precinct, page: Any) -> None:
    """派警: the nearest free officers by name and distance, no device ids."""
    wang = precinct.handhelds["hh-wang"].agent
    page.click('#sos-pinned [data-action="assign"]')
    page.wait_for_selector("#sos-pinned .dispatch label")
    first = page.locator("#sos-pinned .dispatch label").first
    assert "李警官" in first.inner_text()
    metres = re.search(r"(\d+) 米", first.inner_text())
    assert metres is not None
    assert 280 <= int(metres.group(1)) <= 320  # 300 m north of 王警官
    assert first.locator("input").is_checked()
    assert "hh-li" not in page.inner_text("#sos-pinned .dispatch")
    page.click('#sos-pinned [data-action="send"]')
    page.wait_for_selector("#sos-pinned .alarm.assigned")
    assert "出警：李警官" in page.inner_text("#sos-pinned")
    wait_until(lambda: wang.sos and wang.sos["phase"] == "assigned")
    li = precinct.handhelds["hh-li"]
    wait_until(lambda: any("王警官" in m["text"] for m in li.inbox("message")))


@pytest.mark.slow
def test_command_console_flashes_sos_until_acknowledged(
    precinct: Precinct,
    browser_page: Any,
    serve_app: Any,
) -> None:
    base = serve_app(precinct.central.app)
    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{base}/console/#police")
    sign_in(page, "cmd", PASSWORD)
    page.wait_for_selector("#live.on")
    page.wait_for_function(
        "document.querySelectorAll('#police-officers .officer').length === 3"
    )
    page.wait_for_selector("#police-map canvas.maplibregl-canvas")  # the map
    precinct.handhelds["hh-wang"].press()
    page.wait_for_selector("#sos-banner:not([hidden])")
    # The banner blinks (visibility): read its text, not what is painted.
    assert "紧急求救 1 起" in (page.text_content("#sos-banner") or "")
    page.wait_for_selector("#police-officers .officer.sos")
    page.wait_for_selector("#police-map .sos-pulse.flashing")
    # The SOS is pinned above the map and the other alarms until closed.
    assert "紧急求救 · 王警官" in page.inner_text("#sos-pinned")
    # 1 nearby, or 2 once it escalated to the leader (after 3 s here).
    assert re.search(r"已通知 [12] 名附近警员", page.inner_text("#sos-pinned"))
    page.screenshot(path=str(ARTIFACTS / "police-sos.png"), full_page=True)
    page.keyboard.press("Enter")  # acknowledging is one key
    # The banner blinks (visibility), so wait on its hidden attribute.
    page.wait_for_function("document.querySelector('#sos-banner').hidden")
    assert "已确认" in page.inner_text("#sos-pinned")
    wang = precinct.handhelds["hh-wang"].agent
    wait_until(lambda: wang.sos and wang.sos["phase"] == "acknowledged")

    dispatch_by_name(precinct, page)

    page.click("text=指挥调度：发送消息")
    page.select_option("#message-form [name=audience]", "one")
    page.fill("#message-form [name=target]", "hh-li")
    page.fill("#message-form [name=text]", "请到荣家湾站东口集合")
    page.click("#message-form button[type=submit]")
    page.wait_for_selector("#message-list li >> text=请到荣家湾站东口集合")
    wait_until(lambda: precinct.handhelds["hh-li"].inbox("message"))

    page.click("text=轨迹回放")
    page.select_option("#playback-form [name=device]", "hh-li")
    page.click("#playback-form button[type=submit]")
    page.wait_for_selector("#police-map .playhead")
    page.wait_for_function(
        "document.querySelector('#playback-state').textContent.includes('10×')"
    )
    page.screenshot(path=str(ARTIFACTS / "police-acknowledged.png"), full_page=True)

    # Command gives hh-li's phone app its identifier, and can take it back.
    page.click("text=手机定位（OsmAnd / Traccar Client）")
    page.select_option("#phone-form [name=device]", "hh-li")
    page.click("#phone-form button[type=submit]")
    page.wait_for_selector("#phone-result:not([hidden])")
    assert page.inner_text("#phone-url") == f"{base}/osmand"
    phone = {"id": page.inner_text("#phone-id"), "lat": LAT, "lon": LON}
    assert precinct.api.get("/osmand", params=phone).status_code == 200
    phone_card_shows_battery(precinct, page, str(phone["id"]))
    page.click("#phone-revoke")
    page.wait_for_selector("#police-msg >> text=手机识别码已停用")
    assert precinct.api.get("/osmand", params=phone).status_code == 400
