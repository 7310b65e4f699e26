"""Whole journeys in the console, in a real browser (Debian's Chromium, Playwright).

The complaint loop from 受理 to 办结 as the demo's admin (desk and department
at once) and as a separate desk and department operator, each clicking only
what a person sees: pickers with department names, a step log in Chinese, the
kiosk's map tap on the county map. The department sees only its own
complaints and never who complained. The police desk: an SOS pinned above
everything, a listed car that passes a camera again and again as one alarm
with its count, alarms by priority with a filter and a keyboard flow. The
fleet operator's device page: desired against reported configuration whose
drift clears live when the node reports it applied the configuration (the
ingest's live update through the real broadcaster and event stream), the
certificate, the OTA history with the node's reason in Chinese, events.
Central runs without a broker; complaints and plate reads go through the
services as a node's events would.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session
from support.central import central_services, sender
from support.console import sign_in

from central.api.deps import Services, complaints
from central.app import create_app
from central.complaints.models import Department, ServiceType
from central.complaints.service import Filing
from central.fleet import registry, twin
from central.fleet.policy import desired_config
from central.models import Certificate, Device, Event
from central.operators.auth import create_operator
from central.ota.models import RolloutNode, RolloutRow
from central.plates.models import Suspect
from central.plates.service import PlateService
from central.police.models import Alarm, Officer
from central.police.service import PoliceService
from edge.protocol.evidence import seal
from edge.protocol.plates import PlateEventBody

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
PASSWORD = "correct horse battery"
PHONE = "13807300000"
# 荣家湾站 on the shipped county map: where the citizen tapped on the kiosk.
TAP = (29.15535, 113.12315)


@pytest.fixture
def services(sqlite_url: str, tmp_path: Path) -> Iterator[Services]:
    svc = central_services(sqlite_url, tmp_path)
    svc.police = PoliceService(clock=svc.clock, sender=sender(svc))
    svc.plates = PlateService(clock=svc.clock, data_dir=tmp_path, sender=sender(svc))
    now = svc.clock.now()
    with Session(svc.engine) as s:
        for user, role in (
            ("root", "admin"),
            ("desk", "complaints"),
            ("staff", "department"),
            ("cmd", "police"),
        ):
            create_operator(s, username=user, password=PASSWORD, role=role, now=now)
        s.add(Department(code="cgj", name="县城管局", members=["root", "staff"]))
        s.add(Department(code="hbj", name="县生态环境分局", members=["root"]))
        s.add(ServiceType(code="noise", name="噪音扰民", department="cgj"))
        s.add(ServiceType(code="smell", name="异味污染", department="hbj"))
        s.commit()
    yield svc
    svc.engine.dispose()


def _file(svc: Services, service_code: str, description: str) -> tuple[int, str]:
    """A real-name complaint from kiosk-1 with a map tap; its id and 查询码."""
    with Session(svc.engine) as s:
        c = complaints(svc).file(
            s,
            Filing(
                service_code=service_code,
                description=description,
                place="荣家湾站广场",
                lat=TAP[0],
                lon=TAP[1],
                real_name=True,
                name="张三丰",
                phone=PHONE,
                source="kiosk",
                device="kiosk-1",
            ),
            at=svc.clock.now(),
        )
        s.commit()
        s.refresh(c)
        assert c.id is not None
        return c.id, c.code


def _login(page: Any, user: str) -> None:
    sign_in(page, user, PASSWORD)
    page.wait_for_selector("#shell", state="visible")


def _list_for(page: Any, user: str, complaint_id: int) -> None:
    """Wait for the complaint list loaded for ``user`` (not the last one's)."""
    page.wait_for_selector(
        f"#complaint-rows[data-for='{user}'] tr[data-id='{complaint_id}']"
    )


def _open(page: Any, complaint_id: int) -> None:
    page.click(f"#complaint-rows tr[data-id='{complaint_id}']")
    page.wait_for_selector(f"#complaint-detail[data-id='{complaint_id}']")


def _step(page: Any, action: str, state_label: str, note: str = "") -> None:
    """Click one action button and wait for the complaint to reach ``state_label``."""
    if note:
        page.fill("#cd-note", note)
    page.click(f"#cd-actions [data-action={action}]")
    page.wait_for_function(
        "label => document.querySelector('#cd-title').textContent.endsWith(label)",
        arg=state_label,
    )


def _desk_passes_on(page: Any) -> None:
    """受理 → 分流 → 转办, the department picked by name (the type's own preset)."""
    assert page.locator("#cd-department-row").is_hidden()  # nothing to pick yet
    _step(page, "accept", "已受理")
    assert page.locator("#cd-department-row").is_visible()
    assert page.input_value("#cd-department") == "cgj"  # 噪音扰民's department
    options = page.locator("#cd-department option").all_inner_texts()
    assert "县城管局" in options
    assert "县生态环境分局" in options
    _step(page, "triage", "分流")
    page.select_option("#cd-department", label="县城管局")
    _step(page, "assign", "转办")


def _department_works(page: Any) -> None:
    _step(page, "sign", "签收")
    _step(page, "start", "办理中")
    _step(page, "reply", "已答复", note="已约谈广场舞队，22点后停止播放音乐")


def _desk_closes(page: Any) -> None:
    _step(page, "visit", "回访", note="电话回访，群众满意")
    _step(page, "close", "办结")


def _assert_chinese_steps(page: Any) -> None:
    steps = page.locator("#cd-steps li").all_inner_texts()
    log = "\n".join(steps)
    for done in (
        "登记 → 待受理",
        "受理 → 已受理",
        "分流 → 分流",
        "转办 → 转办",
        "签收 → 签收",
        "开始办理 → 办理中",
        "答复 → 已答复",
        "回访 → 回访",
        "办结 → 办结",
    ):
        assert done in log, (done, log)
    for code in ("accept", "assign", "accepted", "in_progress", "closed"):
        assert code not in log, (code, log)


def test_admin_walks_the_whole_complaint_loop(
    services: Services, browser_page: Any, serve_app: Any
) -> None:
    complaint_id, code = _file(services, "noise", "广场舞音响每晚十点后仍很吵")
    base = serve_app(create_app(services))
    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{base}/console/#complaints")
    _login(page, "root")
    page.wait_for_selector(f"#complaint-rows tr[data-id='{complaint_id}']")
    row = page.inner_text(f"#complaint-rows tr[data-id='{complaint_id}']")
    assert code in row
    assert "噪音扰民" in row  # the type's name, not its code
    assert "noise" not in row
    _open(page, complaint_id)

    # The kiosk's map tap, on the county map and in words.
    assert page.locator("#cd-map").is_visible()
    page.wait_for_selector("#cd-map .map-marker.complaint-dot")
    assert "东经 113.12315，北纬 29.15535" in page.inner_text("#cd-place")
    meta = page.inner_text("#cd-meta")
    assert "噪音扰民" in meta
    assert "信息亭" in meta
    assert "张三丰" in meta  # the admin may read who complained

    _desk_passes_on(page)
    assert "承办：县城管局" in page.inner_text("#cd-meta")
    _department_works(page)
    _desk_closes(page)
    assert page.locator("#cd-actions button").count() == 0
    _assert_chinese_steps(page)
    row = page.inner_text(f"#complaint-rows tr[data-id='{complaint_id}']")
    assert "县城管局" in row
    assert "办结" in row
    page.screenshot(
        path=str(ARTIFACTS / "console-complaint-closed.png"), full_page=True
    )


def test_desk_and_department_share_the_loop(
    services: Services, browser_page: Any, serve_app: Any
) -> None:
    mine, code = _file(services, "noise", "夜间施工噪音")
    other, _ = _file(services, "smell", "工厂排放异味")
    with Session(services.engine) as s:
        for action in ("accept", "triage", "assign"):
            complaints(services).act(
                s, other, action, actor="root", role="admin", department="hbj"
            )
    base = serve_app(create_app(services))
    page = browser_page
    page.goto(f"{base}/console/#complaints")

    _login(page, "desk")
    _list_for(page, "desk", mine)
    _open(page, mine)
    _desk_passes_on(page)
    # The desk has no department buttons.
    assert page.locator("#cd-actions [data-action=sign]").count() == 0
    page.click("#logout")

    _login(page, "staff")
    _list_for(page, "staff", mine)
    # Only its own department's complaints, and never who complained.
    assert page.locator(f"#complaint-rows tr[data-id='{other}']").count() == 0
    _open(page, mine)
    assert page.locator("#cd-department-row").is_hidden()
    assert page.locator("#cd-actions [data-action=visit]").count() == 0
    seen = page.inner_text("#page-complaints")
    for personal in ("张三丰", PHONE, code):
        assert personal not in seen
    assert "本岗位不显示姓名电话" in page.inner_text("#cd-meta")
    page.wait_for_selector("#cd-map .map-marker.complaint-dot")  # it sees the place
    _department_works(page)
    page.click("#logout")

    _login(page, "desk")
    _list_for(page, "desk", mine)
    _open(page, mine)
    _desk_closes(page)
    _assert_chinese_steps(page)


def _street(svc: Services) -> None:
    """王警官 pressed SOS; 李警官 300 m north; two listed cars at two cameras."""
    now = svc.clock.now()
    lat, lon = TAP
    key = Ed25519PrivateKey.generate()
    assert svc.plates is not None
    with Session(svc.engine) as s:
        s.add(Officer(device="hh-wang", name="王警官", lat=lat, lon=lon, fix_ts=now))
        s.add(
            Officer(
                device="hh-li",
                name="李警官",
                badge="007",
                lat=lat + 300 / 111_320,
                lon=lon,
                fix_ts=now,
            )
        )
        for plate, category in (("湘F11111", "stolen"), ("湘F22222", "other")):
            s.add(
                Suspect(
                    plate=plate,
                    category=category,
                    valid_from=now - timedelta(days=1),
                    added_by="t",
                    added_at=now,
                )
            )
        s.commit()
        reads = [("camera-1", "湘F11111", n) for n in range(3)]
        reads.append(("camera-2", "湘F22222", 3))
        for camera, plate, n in reads:
            at = now - timedelta(seconds=27 * (3 - n))
            body = PlateEventBody(
                read_id=f"r{n}",
                text=plate,
                confidence=0.99,
                colour="blue",
                seen_at=at,
                evidence=seal(
                    {"plate": f"jpeg-{n}".encode()}, {"text": plate}, key=key
                ),
            )
            svc.plates.record(s, camera, body, now)
            s.commit()
        s.add(
            Alarm(
                key="sos-wang-1",
                kind="sos",
                device="hh-wang",
                state="raised",
                lat=lat,
                lon=lon,
                raised_at=now,
                received_at=now,
            )
        )
        s.commit()


def _alarm_titles(page: Any, where: str) -> list[str]:
    return [t.split("\n")[0] for t in page.locator(f"{where} .alarm").all_inner_texts()]


def test_sos_pinned_repeats_counted_filter_and_one_key(
    services: Services, browser_page: Any, serve_app: Any
) -> None:
    _street(services)
    base = serve_app(create_app(services))
    page = browser_page
    page.goto(f"{base}/console/#police")
    _login(page, "cmd")
    page.wait_for_selector("#sos-pinned .alarm.sos")
    page.wait_for_selector("#alarm-list .alarm.plate")
    assert _alarm_titles(page, "#sos-pinned") == ["紧急求救 · 王警官"]
    # Three passes of one car at one camera: one alarm with its count,
    # the stolen car above the other listed one.
    assert _alarm_titles(page, "#alarm-list") == [
        "布控车辆 · 湘F11111（被盗抢车辆） · camera-1",
        "布控车辆 · 湘F22222（其他布控） · camera-2",
    ]
    assert "共 3 次" in page.inner_text("#alarm-list .alarm.plate >> nth=0")
    assert "未处置 3 起" in page.inner_text("#alarm-count")

    page.select_option("#alarm-filter", "beat")
    page.wait_for_function("!document.querySelector('#alarm-list .alarm')")
    assert _alarm_titles(page, "#sos-pinned") == ["紧急求救 · 王警官"]  # still pinned
    page.select_option("#alarm-filter", "plate")
    page.wait_for_selector("#alarm-list .alarm.plate")
    page.evaluate("document.activeElement.blur()")

    # j/k choose, Enter acknowledges: the stolen car, the SOS untouched.
    page.keyboard.press("j")
    page.wait_for_selector("#sos-pinned .alarm.selected")
    page.keyboard.press("j")
    page.wait_for_selector("#alarm-list .alarm.plate.selected >> nth=0")
    page.keyboard.press("Enter")
    page.wait_for_selector("#alarm-list .alarm.plate.acknowledged")
    assert "湘F11111" in page.inner_text("#alarm-list .alarm.acknowledged")
    assert page.locator("#sos-pinned .alarm.raised").count() == 1
    page.keyboard.press("k")
    page.wait_for_selector("#sos-pinned .alarm.selected")
    page.keyboard.press("Enter")
    page.wait_for_selector("#sos-pinned .alarm.acknowledged")

    # 派警 from the list of free officers nearest the SOS, by name.
    page.click('#sos-pinned [data-action="assign"]')
    page.wait_for_selector("#sos-pinned .dispatch label")
    offer = page.inner_text("#sos-pinned .dispatch")
    assert "李警官（警号 007）" in offer
    assert "王警官" not in offer  # the one in trouble is not sent to himself
    page.click('#sos-pinned [data-action="send"]')
    page.wait_for_selector("#sos-pinned .alarm.assigned")
    assert "出警：李警官" in page.inner_text("#sos-pinned")
    page.screenshot(path=str(ARTIFACTS / "console-alarms.png"), full_page=True)


def _fleet(svc: Services) -> str:
    """kiosk-7 enrolled, one policy version behind, an update deferred; its version."""
    now = svc.clock.now()
    with Session(svc.engine) as s:
        registry.register(
            s, device_id="kiosk-7", kind="kiosk", site="rongjiawan", now=now
        )
        twin.put_layer(
            s,
            scope="fleet",
            target="*",
            values={"heartbeat_s": 20},
            author="root",
            now=now,
        )
        device = s.get_one(Device, "kiosk-7")
        wanted = desired_config(twin.current_layers(s), twin.facts(device)).version
        device.desired_version = wanted
        device.reported_version = "old"
        device.config_status = "applied"
        device.online, device.version, device.health_status = True, "0.1.0", "ok"
        s.add(device)
        s.add(
            Certificate(
                serial="1f2e3d",
                device_id="kiosk-7",
                issued_at=now,
                not_after=now + timedelta(days=365),
            )
        )
        rollout = RolloutRow(
            release="baling-kiosk-0.2.0.tar",
            version="0.2.0",
            kind="kiosk",
            state="running",
            created_by="root",
            created_at=now,
            updated_at=now,
        )
        s.add(rollout)
        s.flush()
        s.add(
            RolloutNode(
                rollout_id=int(rollout.id or 0),
                device="kiosk-7",
                state="assigned",
                fw_state="deferred",
                reason="a citizen is using the kiosk",
                updated_at=now,
            )
        )
        for n in range(3):
            s.add(
                Event(
                    id=f"00000000-0000-7000-8000-00000000000{n}",
                    device="kiosk-7",
                    type="complaint",
                    ts=now - timedelta(minutes=n),
                    received_at=now - timedelta(minutes=n),
                    body={"n": n},
                )
            )
        s.commit()
    return wanted


def test_device_page_shows_drift_clearing_live(
    services: Services, browser_page: Any, serve_app: Any
) -> None:
    wanted = _fleet(services)
    base = serve_app(create_app(services))
    page = browser_page
    page.goto(f"{base}/console/#devices")
    _login(page, "root")
    page.wait_for_selector("#live.on")
    row = "#dev-kiosk-7"
    page.wait_for_selector(row)
    cells = page.locator(f"{row} td").all_inner_texts()
    assert cells[1:3] == ["便民信息亭", "荣家湾镇"]  # kind and site by name
    assert cells[6] == "正常"
    assert cells[7] == "未同步"

    page.click(f"{row} a")
    page.wait_for_selector("#page-device:not([hidden])")
    page.wait_for_function(
        "document.querySelector('#dv-drift').textContent.startsWith('未同步')"
    )
    assert page.inner_text("#dv-desired-version") == wanted
    assert page.inner_text("#dv-reported-version") == "old"
    assert "heartbeat_s" in page.inner_text("#dv-config-rows")
    assert "1f2e3d" in page.inner_text("#dv-cert-rows")
    assert "有效" in page.inner_text("#dv-cert-rows")
    ota = page.inner_text("#dv-ota-rows")
    assert "推迟" in ota
    assert "群众正在使用信息亭" in ota  # the node's reason, in Chinese
    assert page.locator("#dv-event-rows tr").count() == 3
    assert page.locator("#dv-chart rect").count() == 24

    # The node reports it runs the wanted configuration: no reload needed.
    services.broadcaster.publish(
        {
            "type": "device",
            "id": "kiosk-7",
            "online": True,
            "version": "0.1.0",
            "health_status": "degraded",
            "reported_version": wanted,
            "config_status": "applied",
            "config_reason": "",
        }
    )
    page.wait_for_function(
        "document.querySelector('#dv-drift').textContent === '已同步'"
    )
    assert page.inner_text('#dv-facts [data-field="health"]') == "降级"
    page.screenshot(path=str(ARTIFACTS / "console-device.png"), full_page=True)
    page.click("#dv-back")
    page.wait_for_selector(row)
    services.broadcaster.publish(
        {
            "type": "device",
            "id": "kiosk-7",
            "reported_version": wanted,
            "config_status": "applied",
            "config_reason": "",
        }
    )
    page.wait_for_function(
        "document.querySelector('#dev-kiosk-7 [data-field=config]')"
        ".textContent === '已同步'"
    )
