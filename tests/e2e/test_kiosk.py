"""The kiosk in a real browser: a complaint from the screen to the citizen's rating.

Central runs in-process with its HTTP API; the kiosk is the real agent (its
own web app, outbox, MQTT link) printing on the ESC/POS printer simulator;
Debian's Chromium walks the kiosk and the console. Screenshots go to
``artifacts/``.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from support.console import sign_in
from support.kiosks import enrol_node
from support.waiting import wait_until

from baling.broker import free_port
from central.complaints.models import Complaint, Slot
from central.main import Central
from central.operators.auth import create_operator
from central.settings import CentralSettings
from edge.node import build_agent
from firmware_sim.printer import PrinterSimulator
from kiosk.agent import KioskAgent
from kiosk.settings import KioskSettings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from baling.broker import Mosquitto

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
PASSWORD = "correct horse battery"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
A11Y = Path(__file__).with_name("a11y.js")  # 适老化 measurements in the page


class Centre:
    """Central with its HTTP server, which the test can stop and start again."""

    def __init__(self, settings: CentralSettings) -> None:
        self.settings = settings
        self.central: Central | None = None
        self.server: uvicorn.Server | None = None
        self.web: threading.Thread | None = None

    def start(self) -> Central:
        self.central = Central(self.settings)
        self.central.start()
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.central.app, port=self.settings.http_port, log_level="warning"
            )
        )
        self.web = threading.Thread(target=self.server.run, daemon=True)
        self.web.start()
        while not self.server.started:
            time.sleep(0.05)
        return self.central

    def stop(self) -> None:
        assert self.server is not None
        assert self.web is not None
        assert self.central is not None
        self.server.should_exit = True
        self.web.join(timeout=10)
        self.central.stop()

    def complaint(self, code: str) -> Complaint | None:
        assert self.central is not None
        with Session(self.central.services.engine) as session:
            return session.exec(select(Complaint).where(Complaint.code == code)).first()


@pytest.fixture
def town(
    broker: Mosquitto, tmp_path: Path
) -> Iterator[tuple[Centre, KioskAgent, PrinterSimulator, int]]:
    settings = CentralSettings(
        database_url=f"sqlite:///{tmp_path / 'central.sqlite3'}",
        jwt_secret="x" * 40,
        data_dir=tmp_path / "central",
        broker_port=broker.port,
        http_port=free_port(),
        offline_after_s=3600.0,
    )
    centre = Centre(settings)
    central = centre.start()
    now = central.clock.now()
    with Session(central.services.engine) as session:
        create_operator(
            session, username="desk", password=PASSWORD, role="complaints", now=now
        )
        create_operator(
            session, username="staff", password=PASSWORD, role="department", now=now
        )
        session.add(
            Slot(
                centre="县政务服务中心",
                service="户籍办理",
                starts_at=now + timedelta(days=1),
                capacity=2,
            )
        )
        session.commit()
    with TestClient(central.app) as api:
        r = api.post(
            "/api/v1/auth/token", data={"username": "desk", "password": PASSWORD}
        )
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        api.put(
            "/api/v1/complaints/setup/departments/cgj",
            json={"name": "县城管局", "members": ["staff"]},
            headers=h,
        )
        api.put(
            "/api/v1/complaints/setup/services/noise",
            json={"name": "噪音扰民", "department": "cgj"},
            headers=h,
        )
        for item in (
            {
                "kind": "notice",
                "title": "关于冬季供暖的通知",
                "body": "12月1日起集中供暖。",
            },
            {
                "kind": "guide",
                "title": "户籍办理",
                "body": "携带身份证、户口簿。",
                "extra": {"documents": ["身份证", "户口簿"]},
            },
            {"kind": "place", "title": "荣家湾广场", "body": "建设路与站前路交叉口"},
        ):
            api.post("/api/v1/kiosk-content", json=item, headers=h)
    printer = PrinterSimulator()
    stop = threading.Event()
    threading.Thread(target=printer.run, args=(stop,), daemon=True).start()
    assert central.services.ca is not None
    enrolled = enrol_node(  # its credential for central's kiosk API
        central.services.engine,
        central.services.ca,
        device_id="kiosk-1",
        site="rjw",
        now=now,
        directory=tmp_path / "kiosk-enrolment",
    )
    kiosk = build_agent(
        KioskAgent,
        KioskSettings(
            device_id="kiosk-1",
            kind="kiosk",
            data_dir=tmp_path / "kiosk",
            cert_file=enrolled.cert_file,
            key_file=enrolled.key_file,
            broker_port=broker.port,
            central_url=f"http://127.0.0.1:{settings.http_port}",
            http_port=free_port(),
            printer_url=printer.path,
            idle_s=10,
            countdown_s=3,
            content_every_s=5,
        ),
    )
    threading.Thread(target=kiosk.run, args=(stop,), daemon=True).start()
    wait_until(lambda: kiosk.content.get("services"))
    yield centre, kiosk, printer, kiosk.ks.http_port
    stop.set()
    time.sleep(0.5)
    centre.stop()
    printer.close()


def test_complaint_from_kiosk_to_rating(
    town: tuple[Centre, KioskAgent, PrinterSimulator, int], browser_page: Any
) -> None:
    centre, _kiosk, printer, port = town
    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    base = f"http://127.0.0.1:{port}"
    page.goto(base + "/")
    page.click("text=政务公开")
    assert "关于冬季供暖的通知" in page.inner_text("main")
    page.goto(base + "/")
    page.click("text=投诉举报")
    page.select_option("select[name=service_code]", "noise")
    page.wait_for_selector("#pick-map[data-ready] canvas.maplibregl-canvas")
    page.click("#pick-map", position={"x": 200, "y": 150})  # a tap on the map
    page.wait_for_selector("#pick-map .pick-pin")
    assert 29.1 < float(page.input_value("#lat")) < 29.2  # in 荣家湾
    assert 113.0 < float(page.input_value("#lon")) < 113.2
    page.fill("input[name=place]", "荣家湾广场")
    page.fill("textarea[name=description]", "广场舞音响每晚十点后仍很吵")
    page.screenshot(path=str(ARTIFACTS / "kiosk-complaint.png"), full_page=True)
    page.click("button[type=submit]")
    code = page.inner_text("#code").strip()
    assert len(code) == 8
    assert "回执已打印" in page.inner_text("main")
    page.screenshot(path=str(ARTIFACTS / "kiosk-receipt.png"), full_page=True)
    receipt = wait_until(lambda: printer.receipts)[-1]
    assert f"查询码：{code}" in receipt.lines
    assert receipt.qr == [code]
    assert "噪音扰民" in receipt.text

    filed = wait_until(lambda: centre.complaint(code))
    assert filed.state == "pending"
    assert filed.lat is not None
    assert 29.0 < filed.lat < 29.3
    assert filed.device == "kiosk-1"
    central = centre.central
    assert central is not None
    with TestClient(central.app) as api:
        r = api.post(
            "/api/v1/auth/token", data={"username": "desk", "password": PASSWORD}
        )
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        for action in ("accept", "triage", "assign"):
            assert (
                api.post(
                    f"/api/v1/complaints/{filed.id}/{action}", json={}, headers=h
                ).status_code
                == 200
            )

    _department_replies_in_console(page, centre, code)

    # The citizen checks with the code and rates the answer.
    page.goto(base + "/status")
    page.fill("input[name=code]", code.lower())
    page.click("form[action='/status'] button[type=submit]")
    assert page.inner_text("#state") == "已答复"
    assert "22点后停止播放音乐" in page.inner_text("#reply")
    page.click("button[name=score][value='5']")
    assert "感谢您的评价" in page.inner_text("main")
    rated = wait_until(
        lambda: (c := centre.complaint(code)) is not None and c.rating == 5 and c
    )
    assert rated.rating == 5


def test_idle_timeout_wipes_a_half_filled_form(
    town: tuple[Centre, KioskAgent, PrinterSimulator, int], browser_page: Any
) -> None:
    _, _, _, port = town
    page = browser_page
    page.goto(f"http://127.0.0.1:{port}/care?on=1")
    assert "care" in (page.get_attribute("body", "class") or "")
    page.goto(f"http://127.0.0.1:{port}/complaint")
    # 适老化: body text ≥ 18 pt (24 px), touch targets ≥ 60 × 60 px, contrast ≥ 4.5:1.
    checks = page.evaluate(A11Y.read_text(encoding="utf-8"))
    assert checks["font"] >= 24
    assert checks["small"] == []
    assert checks["contrast"] >= 4.5
    page.fill("textarea[name=description]", "写了一半")
    page.wait_for_selector("#idle:not([hidden])", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "kiosk-idle-countdown.png"), full_page=True)
    page.wait_for_url(f"http://127.0.0.1:{port}/", timeout=10_000)
    assert "care" not in (
        page.get_attribute("body", "class") or ""
    )  # the session is gone
    page.goto(f"http://127.0.0.1:{port}/complaint")
    assert page.input_value("textarea[name=description]") == ""


def test_offline_complaint_is_printed_and_delivered_later(
    town: tuple[Centre, KioskAgent, PrinterSimulator, int], browser_page: Any
) -> None:
    centre, kiosk, printer, port = town
    centre.stop()
    page = browser_page
    base = f"http://127.0.0.1:{port}"
    page.goto(base + "/complaint")
    page.select_option("select[name=service_code]", "noise")  # from the cache
    page.fill("textarea[name=description]", "断网时提交的投诉")
    page.click("button[type=submit]")
    code = page.inner_text("#code").strip()
    assert wait_until(lambda: [r for r in printer.receipts if code in r.qr])
    page.goto(base + "/status")
    page.fill("input[name=code]", code)
    page.click("form[action='/status'] button[type=submit]")
    assert "网络暂时不通" in page.inner_text("main")
    assert "central_unreachable" in kiosk.faults()
    centre.start()
    delivered = wait_until(lambda: centre.complaint(code), timeout=30)
    assert delivered.description == "断网时提交的投诉"


def _department_replies_in_console(page: Any, centre: Centre, code: str) -> None:
    """The department signs, works and replies in the console."""
    console = f"http://127.0.0.1:{centre.settings.http_port}/console/#complaints"
    page.goto(console)
    sign_in(page, "staff", PASSWORD)
    # A department is not shown the 查询码 (the citizen's key); it picks by id.
    filed = centre.complaint(code)
    assert filed is not None
    page.click(f"#complaint-rows tr[data-id='{filed.id}']")
    page.click("#cd-actions [data-action=sign]")
    page.wait_for_function(
        "document.querySelector('#cd-title').textContent.includes('签收')"
    )
    page.click("#cd-actions [data-action=start]")
    page.wait_for_function(
        "document.querySelector('#cd-title').textContent.includes('办理中')"
    )
    page.fill("#cd-note", "已约谈广场舞队，22点后停止播放音乐")
    page.click("#cd-actions [data-action=reply]")
    page.wait_for_function(
        "document.querySelector('#cd-title').textContent.includes('已答复')"
    )
    page.screenshot(
        path=str(ARTIFACTS / "console-complaint-replied.png"), full_page=True
    )


def test_paper_out_shows_the_code_on_screen_and_raises_a_fault(
    town: tuple[Centre, KioskAgent, PrinterSimulator, int], browser_page: Any
) -> None:
    _, kiosk, printer, port = town
    printer.paper_out = True
    page = browser_page
    page.goto(f"http://127.0.0.1:{port}/complaint")
    page.fill("textarea[name=description]", "路灯不亮")
    page.click("button[type=submit]")
    assert "打印机缺纸，请记下上面的查询码" in page.inner_text("main")
    assert len(page.inner_text("#code").strip()) == 8
    assert "printer_paper_out" in kiosk.faults()
    assert kiosk.update_deferral() == "a citizen is using the kiosk"  # no OTA now
    printer.paper_out = False
