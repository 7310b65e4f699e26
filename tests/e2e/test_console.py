"""The console in a real browser (Debian's Chromium, driven by Playwright).

Logs in, sees a node online, and watches it go offline live (SSE) without a
reload. Screenshots are kept under ``artifacts/`` for a person to look at.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlmodel import Session
from support.console import sign_in

from central.fleet import registry
from central.operators.auth import create_operator
from edge import NodeSettings, SystemClock, build_agent
from firmware_sim.eventnode import SimAgent

if TYPE_CHECKING:
    from baling.broker import Mosquitto
    from central.main import Central

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
PASSWORD = "correct horse battery"


def test_device_page_updates_live(
    make_central: Any,
    sqlite_url: str,
    broker: Mosquitto,
    tmp_path: Path,
    *,
    browser_page: Any,
    serve_app: Any,
) -> None:
    central: Central = make_central(sqlite_url)
    clock = SystemClock()
    with Session(central.services.engine) as s:
        create_operator(
            s, username="ops", password=PASSWORD, role="admin", now=clock.now()
        )
        registry.register(
            s, device_id="sim-1", kind="sim", site="rongjiawan", now=clock.now()
        )
    base = serve_app(central.app)
    agent = build_agent(
        SimAgent,
        NodeSettings(
            device_id="sim-1",
            kind="sim",
            data_dir=tmp_path / "n",
            broker_port=broker.port,
            heartbeat_s=1,
        ),
    )
    stop = threading.Event()
    node = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    node.start()
    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.goto(f"{base}/console/")
        sign_in(page, "ops", "wrong password!")
        page.wait_for_selector("text=用户名或密码错误")
        sign_in(page, "ops", PASSWORD)
        badge = page.locator("#dev-sim-1 [data-field=online]")
        page.wait_for_selector("#live.on")
        deadline = time.monotonic() + 15
        while badge.inner_text() != "在线" and time.monotonic() < deadline:
            page.reload()
            page.wait_for_selector("#dev-sim-1")
        assert badge.inner_text() == "在线"
        page.wait_for_selector("#live.on")
        page.screenshot(
            path=str(ARTIFACTS / "console-devices-online.png"), full_page=True
        )
        stop.set()
        node.join(10)
        # No reload from here: the change must arrive over the live stream.
        page.wait_for_function(
            "document.querySelector('#dev-sim-1 [data-field=online]')"
            ".textContent === '离线'",
            timeout=15000,
        )
        page.screenshot(
            path=str(ARTIFACTS / "console-devices-offline.png"), full_page=True
        )
        assert "巴陵" in page.title()
    finally:
        stop.set()


def test_enrolment_and_audit_pages(
    make_central: Any,
    sqlite_url: str,
    browser_page: Any,
    serve_app: Any,
) -> None:
    central: Central = make_central(sqlite_url)
    with Session(central.services.engine) as s:
        create_operator(
            s, username="ops", password=PASSWORD, role="admin", now=SystemClock().now()
        )
    base = serve_app(central.app)
    page = browser_page
    page.goto(f"{base}/console/#enrol")
    sign_in(page, "ops", PASSWORD)
    page.wait_for_selector("#page-enrol:not([hidden])")
    page.select_option("#enrol-form select[name=kind]", "camera")
    page.fill("#enrol-form input[name=site]", "rongjiawan")
    page.click("#enrol-form button[type=submit]")
    page.wait_for_selector("#enrol-result:not([hidden])")
    code = page.inner_text("#enrol-code")
    assert len(code) == 9
    assert code[4] == "-"
    assert page.locator("#enrol-qr svg").count() == 1
    page.screenshot(path=str(ARTIFACTS / "console-enrolment.png"), full_page=True)
    page.goto(f"{base}/console/#audit")
    page.wait_for_selector("#audit-rows tr")
    assert "enrolment.code" in page.inner_text("#audit-rows")
    page.click("#audit-verify")
    page.wait_for_selector("text=哈希链完整")
    page.screenshot(path=str(ARTIFACTS / "console-audit.png"), full_page=True)


def test_the_device_page_pages_and_filters_ten_thousand_devices(
    make_central: Any, sqlite_url: str, browser_page: Any, serve_app: Any
) -> None:
    """A county's fleet: 50 rows a page, the filter runs in central."""
    from central.models import Device  # noqa: PLC0415
    from firmware_sim.loadgen import device_id, kind_of  # noqa: PLC0415

    central: Central = make_central(sqlite_url)
    clock = SystemClock()
    with Session(central.services.engine) as s:
        create_operator(
            s, username="ops", password=PASSWORD, role="admin", now=clock.now()
        )
        s.add_all(
            Device(
                id=device_id(n), kind=kind_of(n), site="load", created_at=clock.now()
            )
            for n in range(10_000)
        )
        s.commit()
    cameras = sum(1 for n in range(10_000) if kind_of(n) == "camera")
    base = serve_app(central.app)
    page = browser_page
    page.goto(f"{base}/console/")
    sign_in(page, "ops", PASSWORD)
    page.wait_for_selector("#device-count:has-text('共 10000 台')")
    assert page.locator("#device-rows tr").count() == 50
    page.click("#next")
    page.wait_for_selector("#page-info:has-text('51–100 / 10000')")
    page.select_option('#device-filter [name="kind"]', "camera")
    page.click("#device-filter button[type=submit]")
    page.wait_for_selector(f"#device-count:has-text('共 {cameras} 台')")
    kinds = page.locator("#device-rows tr td:nth-child(2)").all_inner_texts()
    assert set(kinds) == {"车牌识别摄像机"}  # the kind's Chinese name
    page.fill('#device-filter [name="q"]', "vcam-0004")
    page.click("#device-filter button[type=submit]")
    page.wait_for_function("document.querySelectorAll('#device-rows tr').length <= 10")
