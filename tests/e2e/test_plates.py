"""ANPR journeys on a real broker: suspect hits, possible hits, evidence, red light.

Central runs in-process; ``cam-1`` is the real camera agent reading frames
that the street-camera simulator writes into its spool; ``hh-near`` is a
real handheld 500 m from the camera; another officer 10 km away reports
through the OsmAnd protocol. ``cam-2`` is a simulated camera speaking the
real wire protocol, used where a test needs a read the renderer cannot make
on demand (an unsure one).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlmodel import Session
from support.console import sign_in
from support.waiting import wait_until

from camera_node.agent import CameraAgent
from camera_node.settings import CameraSettings
from central.fleet import registry
from central.operators.auth import create_operator
from edge.agent import Agent
from edge.node import build_agent
from edge.protocol import encode, make, topics
from edge.protocol.evidence import seal
from edge.protocol.messages import StateBody, to_body
from edge.protocol.signing import public_key_text
from edge.settings import NodeSettings
from firmware_sim.camera import SceneCamera, Vehicle
from firmware_sim.gnss import GnssSimulator, Noise, open_pty, walking
from handheld.agent import HandheldAgent
from handheld.settings import HandheldSettings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from baling.broker import Mosquitto
    from central.main import Central

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
LAT, LON = 29.145, 113.118
M_LAT = 1 / 110_850
PASSWORD = "correct horse battery"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@dataclass
class Street:
    central: Central
    api: TestClient
    headers: dict[str, str]
    camera: SceneCamera
    cam: CameraAgent
    handheld: HandheldAgent
    probe: Agent
    port: int

    def get(self, path: str, **params: str | int) -> Any:
        r = self.api.get(path, params=params, headers=self.headers)
        assert r.status_code == 200, r.text
        return r.json()

    def post(self, path: str, body: object = None) -> Any:
        r = self.api.post(path, json=body or {}, headers=self.headers)
        assert r.status_code in (200, 201), r.text
        return r.json()


@pytest.fixture
def street(
    broker: Mosquitto, make_central: Callable[..., Central], tmp_path: Path
) -> Iterator[Street]:
    central = make_central(f"sqlite:///{tmp_path / 'central.sqlite3'}")
    key = public_key_text(central.command_key.public_key())
    now = central.clock.now()
    with Session(central.services.engine) as session:
        create_operator(
            session, username="cmd", password=PASSWORD, role="admin", now=now
        )
        registry.register(
            session,
            device_id="cam-1",
            kind="camera",
            site="rjw",
            lat=LAT,
            lon=LON,
            now=now,
        )
        registry.register(
            session,
            device_id="cam-2",
            kind="camera",
            site="rjw",
            lat=LAT,
            lon=LON,
            now=now,
        )
        for device in ("hh-near", "hh-far"):
            registry.register(
                session, device_id=device, kind="handheld", site="rjw", now=now
            )
    stop = threading.Event()
    camera = SceneCamera(tmp_path / "spool", seed=11)
    cam = build_agent(
        CameraAgent,
        CameraSettings(
            device_id="cam-1",
            kind="camera",
            data_dir=tmp_path / "cam-1",
            broker_port=broker.port,
            heartbeat_s=1.0,
            command_keys=[key],
            require_signed_commands=True,
            camera_url=f"spool:{tmp_path / 'spool'}",
        ),
    )
    pty = open_pty()
    sim = GnssSimulator(
        walking(), noise=Noise(poor_rate=0, dropout_rate=0, corrupt_rate=0), seed=2
    )
    sim.hold = (LAT + 500 * M_LAT, LON)
    hand = build_agent(
        HandheldAgent,
        HandheldSettings(
            device_id="hh-near",
            kind="handheld",
            data_dir=tmp_path / "hh",
            broker_port=broker.port,
            command_keys=[key],
            require_signed_commands=True,
            gnss_url=pty.path,
            sos_button=f"file:{tmp_path / 'pin'}",
        ),
    )
    probe = build_agent(
        Agent,
        NodeSettings(
            device_id="cam-2",
            kind="camera",
            data_dir=tmp_path / "cam-2",
            broker_port=broker.port,
        ),
    )
    threads = [
        threading.Thread(target=sim.run, args=(pty.master, stop), daemon=True),
        threading.Thread(target=cam.run, args=(stop,), daemon=True),
        threading.Thread(target=hand.run, args=(stop,), daemon=True),
        threading.Thread(target=probe.run, args=(stop,), daemon=True),
    ]
    for t in threads:
        t.start()
    with TestClient(central.app) as api:
        r = api.post(
            "/api/v1/auth/token", data={"username": "cmd", "password": PASSWORD}
        )
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        place = Street(central, api, headers, camera, cam, hand, probe, broker.port)
        phone = api.post("/api/v1/police/officers/hh-far/osmand", headers=headers)
        far: dict[str, str | float] = {
            "id": phone.json()["identifier"],
            "lat": LAT + 10_000 * M_LAT,
            "lon": LON,
            "timestamp": str(int(time.time())),
        }
        assert api.get("/osmand", params=far).status_code == 200

        def placed() -> bool:
            officers = place.get("/api/v1/police/officers")
            return sum(o["lat"] is not None for o in officers) == 2

        wait_until(placed)
        yield place
    stop.set()
    for t in threads:
        t.join(timeout=15)
    pty.close()


def test_a_listed_plate_alarms_the_console_and_the_officer_nearby(
    street: Street,
) -> None:
    listed = street.post(
        "/api/v1/plates/suspects",
        {"plate": "湘fd4439", "category": "stolen", "note": "被盗 2026-11-20"},
    )
    assert listed["plate"] == "湘FD4439"
    street.camera.drive(Vehicle("湘FD4439", "blue", frames=4))
    street.camera.drive(Vehicle("鄂A77Y21", "yellow", frames=3))
    alarm = wait_until(
        lambda: [a for a in street.get("/api/v1/police/alarms") if a["kind"] == "plate"]
    )[0]
    assert alarm["detail"]["plate"] == "湘FD4439"
    assert alarm["detail"]["category"] == "stolen"
    assert [a["device"] for a in alarm["alerted"]] == [
        "hh-near"
    ]  # hh-far is 10 km away
    alert = wait_until(
        lambda: [i for i in street.handheld.inbox if i["kind"] == "plate"]
    )[0]
    assert "湘FD4439" in alert["text"]
    hits = street.get("/api/v1/plates/hits")
    assert [(h["read"], h["kind"]) for h in hits] == [("湘FD4439", "exact")]
    reads = wait_until(
        lambda: (
            len(street.get("/api/v1/plates/reads")) == 2
            and street.get("/api/v1/plates/reads")
        )
    )
    by_plate = {r["plate"]: r for r in reads}
    assert by_plate["鄂A77Y21"]["hit"] is False
    seen = by_plate["湘FD4439"]
    assert seen["evidence"]["verified"] is True
    assert seen["evidence"]["trust"] == "self"  # cam-1 was not enrolled in this test
    image = street.api.get(
        f"/api/v1/plates/evidence/{seen['evidence']['images']['plate']}",
        headers=street.headers,
    )
    assert image.headers["content-type"] == "image/jpeg"
    assert image.content[:2] == b"\xff\xd8"
    track = street.get("/api/v1/plates/sightings", plate="湘FD4439")
    assert [(t["device"], t["lat"]) for t in track] == [("cam-1", LAT)]


def _unsure_read(street: Street, text: str, *, tamper: bool = False) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    facts = {"device": "cam-2", "text": text}
    package = seal({"plate": b"\xff\xd8x", "scene": b"\xff\xd8y"}, facts, key=key)
    if tamper:
        package["facts"] = {**facts, "text": "湘A00000"}
    now = street.central.clock.now()
    street.probe.emit(
        "plate",
        {
            "read_id": f"r-{text}-{tamper}",
            "text": text,
            "confidence": 0.45,
            "alternatives": [],
            "colour": "blue",
            "seen_at": (now - timedelta(seconds=2)).isoformat(),
            "frames": 2,
            "evidence": package,
        },
    )


def test_a_confusable_unsure_read_is_a_possible_hit_for_a_person_to_confirm(
    street: Street,
) -> None:
    street.post("/api/v1/plates/suspects", {"plate": "湘F8B123", "category": "wanted"})
    r = street.api.post(
        "/api/v1/plates/suspects",
        json={"plate": "湘F8I123", "category": "wanted"},
        headers=street.headers,
    )
    assert r.status_code == 422  # no I in a serial
    bad_csv = (
        "plate,category,note\n湘A11111,unpaid,欠费\n"
        "not-a-plate,stolen,\n鄂B22222,nonsense,\n"
    )
    imported = street.api.post(
        "/api/v1/plates/suspects/import",
        content=bad_csv.encode(),
        headers=street.headers,
    ).json()
    assert imported["added"] == 1
    assert [e["line"] for e in imported["errors"]] == [3, 4]
    _unsure_read(street, "湘FB8123")  # 8 and B swapped, read unsure
    _unsure_read(street, "湘Y99999")  # nothing like anything listed
    hit = wait_until(lambda: street.get("/api/v1/plates/hits"))[0]
    assert (hit["read"], hit["listed"], hit["kind"], hit["state"]) == (
        "湘FB8123",
        "湘F8B123",
        "possible",
        "open",
    )
    assert not [a for a in street.get("/api/v1/police/alarms") if a["kind"] == "plate"]
    confirmed = street.post(f"/api/v1/plates/hits/{hit['id']}/confirm")
    assert confirmed["state"] == "confirmed"
    alarm = next(a for a in street.get("/api/v1/police/alarms") if a["kind"] == "plate")
    assert alarm["detail"]["plate"] == "湘F8B123"
    r = street.api.post(
        f"/api/v1/plates/hits/{hit['id']}/reject", headers=street.headers
    )
    assert r.status_code == 409
    actions = [a["action"] for a in street.get("/api/v1/audit", limit=100)]
    assert {"suspect.add", "suspect.import", "plate.hit.confirmed"} <= set(actions)
    _unsure_read(street, "湘FB8123", tamper=True)

    def refused() -> list[Any]:
        return [
            r
            for r in street.get("/api/v1/plates/reads")
            if not r["evidence"].get("verified")
        ]

    bad = wait_until(refused)[0]
    assert bad["evidence"]["error"] == "evidence_digest"
    assert wait_until(lambda: len(street.get("/api/v1/plates/reads")) == 3)


def test_crossing_on_red_is_captured_with_the_phase_and_frames(street: Street) -> None:
    r = street.api.put(
        "/api/v1/policy/device/cam-1",
        json={"junction": "sig-1", "signal_group": "north", "stop_line_y": 300},
        headers=street.headers,
    )
    assert r.status_code == 200, r.text
    wait_until(lambda: street.cam.cfg.junction == "sig-1")
    # A simulated signal cabinet on the real wire: its retained state, red since 10 s.
    since = street.central.clock.now() - timedelta(seconds=10)
    state = StateBody(
        online=True,
        kind="signal_controller",
        detail={
            "signal": {
                "groups": {"north": {"state": "red", "since": since.isoformat()}}
            }
        },
    )
    cabinet = paho.Client(
        CallbackAPIVersion.VERSION2, client_id="sig-1", protocol=paho.MQTTv5
    )
    cabinet.connect("127.0.0.1", street.port)
    cabinet.loop_start()
    payload = encode(
        make("sig-1", "state", to_body(state), now=street.central.clock.now())
    )
    cabinet.publish(
        topics.state("sig-1"), payload, qos=1, retain=True
    ).wait_for_publish(5)
    wait_until(
        lambda: street.cam.signal is not None and street.cam.signal.state == "red"
    )
    street.camera.drive(Vehicle("湘FK8808", "blue", frames=5))
    violation = wait_until(lambda: street.get("/api/v1/plates/violations"))[0]
    cabinet.loop_stop()
    assert violation["plate"] == "湘FK8808"
    assert violation["junction"] == "sig-1"
    assert violation["signal_group"] == "north"
    assert violation["evidence"]["verified"] is True
    assert set(violation["evidence"]["images"]) == {"before", "at_line", "plate"}


def test_plate_console_shows_hits_with_their_images_and_the_track(
    street: Street,
    browser_page: Any,
    serve_app: Any,
) -> None:
    street.post("/api/v1/plates/suspects", {"plate": "湘FD4439", "category": "stolen"})
    street.camera.drive(Vehicle("湘FD4439", "blue", frames=3))
    wait_until(lambda: street.get("/api/v1/plates/hits"))
    base = serve_app(street.central.app)
    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{base}/console/#plates")
    sign_in(page, "cmd", PASSWORD)
    page.wait_for_selector("#plate-hits li.exact")
    assert "命中 湘FD4439（被盗抢车辆）" in page.inner_text("#plate-hits")
    # Each hit card says when and at which camera, with both images.
    where = page.inner_text("#plate-hits li.exact [data-field=where]")
    assert "cam-1" in where
    assert re.search(r"\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}", where), where
    assert page.locator("#plate-hits li.exact img").count() == 2  # plate, scene
    page.wait_for_function(
        "[...document.querySelectorAll('#plate-hits img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert "湘FD4439" in page.inner_text("#suspect-rows")
    page.fill("#sighting-form [name=plate]", "湘FD4439")
    page.click("#sighting-form button[type=submit]")
    page.wait_for_selector("#plates-map .camera-dot")
    assert "共 1 次经过" in page.inner_text("#sighting-state")
    page.screenshot(path=str(ARTIFACTS / "plates-hit.png"), full_page=True)
