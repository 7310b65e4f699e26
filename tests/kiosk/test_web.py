"""The kiosk's touchscreen app through FastAPI's client, around a real kiosk agent.

The agent is the real one, built offline: its content comes from the cache
on disk, complaints and ratings go into its SQLite outbox (its MQTT link is
never started), and central is either away (a closed port) or central's
real app served on loopback. What is checked is what a citizen sees: every
page in Chinese, the 适老化 switch, the idle wipe, the complaint form's
refusals, the receipt, and the messages when central cannot be reached.
The printer on its serial line and the browser's scripts are left to
``tests/e2e/test_kiosk.py``.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.central import central_services
from support.kiosks import NodeCredential, enrol_node
from support.nodes import node_config

from baling.broker import free_port
from central.app import create_app
from central.complaints.models import Slot
from central.db import make_engine
from central.main import load_or_create_ca
from edge.clock import ManualClock
from edge.node import build_agent
from edge.protocol import decode
from kiosk.agent import KioskAgent
from kiosk.settings import KioskSettings
from kiosk.web import create_kiosk_app
from provisioning.ca import FleetCA

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

START = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
CONTENT = {
    "version": "c1",
    "items": {
        "notice": [{"title": "停水通知", "body": "建设路明日停水", "extra": {}}],
        "guide": [
            {
                "title": "居民身份证办理",
                "body": "户籍窗口办理",
                "extra": {"documents": ["户口簿", "照片"]},
            }
        ],
        "place": [{"title": "荣家湾镇政府", "body": "建设路1号", "extra": {}}],
        "utility": [{"title": "自来水公司", "body": "服务电话 12345", "extra": {}}],
    },
    "services": [{"code": "road", "group": "城市管理", "name": "道路破损"}],
}
HAN = re.compile(r"[\u4e00-\u9fff]")


def kiosk_agent(
    tmp_path: Path, central_url: str, credential: NodeCredential | None = None
) -> KioskAgent:
    """A kiosk whose cache already holds :data:`CONTENT` (it works offline).

    ``credential`` gives it the files enrolment leaves (its key and
    certificate), without which central's kiosk API refuses it.
    """
    files = (
        {"cert_file": credential.cert_file, "key_file": credential.key_file}
        if credential is not None
        else {}
    )
    settings = node_config(
        KioskSettings,
        device_id="kiosk-1",
        kind="kiosk",
        tmp_path=tmp_path,
        broker_port=free_port(),  # the link is never started
        central_url=central_url,
        printer_url="",
        idle_s=45,
        countdown_s=8,
        **files,
    )
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "content.json").write_text(
        json.dumps(CONTENT, ensure_ascii=False), encoding="utf-8"
    )
    return build_agent(KioskAgent, settings, clock=ManualClock(START))


def running(agent: KioskAgent) -> Callable[[], None]:
    """Run the agent's loop (what stores complaints) until the returned stop."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            agent.step()
            stop.wait(0.01)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=5)
        agent.outbox.close()

    return halt


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[KioskAgent]:
    made = kiosk_agent(tmp_path, f"http://127.0.0.1:{free_port()}")  # central away
    halt = running(made)
    yield made
    halt()


@pytest.fixture
def screen(agent: KioskAgent) -> Iterator[TestClient]:
    with TestClient(create_kiosk_app(agent), follow_redirects=False) as client:
        yield client


def events(agent: KioskAgent, type_: str) -> list[dict[str, Any]]:
    """The bodies of ``type_`` events waiting in the kiosk's outbox."""
    suffix = f"/event/{type_}"
    return [
        decode(s.payload).body
        for s in agent.outbox.peek(1000)
        if s.topic.endswith(suffix)
    ]


def shown(page: str) -> str:
    """The text of a page's main part, tags dropped, spaces squeezed."""
    main = page.split("<main>", 1)[1].split("</main>", 1)[0]
    return " ".join(re.sub(r"<[^>]+>", " ", main).split())


@pytest.mark.parametrize(
    ("path", "heading"),
    [
        ("/", "投诉举报"),
        ("/info/notice", "政务公开"),
        ("/info/guide", "办事指南"),
        ("/info/place", "地名查询"),
        ("/info/utility", "公用事业"),
        ("/complaint", "投诉举报"),
        ("/status", "进度查询与评价"),
        ("/book", "办事预约"),
        ("/receipt/K7QPM2XD", "已受理登记"),
        ("/info/weather", "没有这一栏目"),
    ],
)
def test_every_page_is_in_chinese(screen: TestClient, path: str, heading: str) -> None:
    answer = screen.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in answer.text
    assert "数字巴陵" in answer.text
    assert heading in shown(answer.text)
    # what a citizen reads is Chinese: no English sentence slips through
    words = re.findall(r"[A-Za-z]{4,}", shown(answer.text))
    assert not words, words
    assert HAN.search(shown(answer.text))


def test_information_comes_from_the_cache_and_can_be_searched(
    screen: TestClient,
) -> None:
    guide = shown(screen.get("/info/guide").text)
    assert "居民身份证办理" in guide
    assert "所需材料：户口簿、照片" in guide
    assert "停水通知" in shown(screen.get("/info/notice", params={"q": "停水"}).text)
    nothing = shown(screen.get("/info/notice", params={"q": "供暖"}).text)
    assert "暂无内容" in nothing
    assert "停水通知" not in nothing


def test_care_mode_makes_the_screen_bigger_until_the_session_ends(
    screen: TestClient, agent: KioskAgent
) -> None:
    plain = screen.get("/").text
    assert '<body class=""' in plain
    assert "大字模式（适老化）" in plain

    on = screen.get("/care", params={"on": 1})
    assert (on.status_code, on.headers["location"]) == (303, "/")
    assert "care=1" in on.headers["set-cookie"]
    assert "samesite=strict" in on.headers["set-cookie"].lower()
    cared = screen.get("/").text
    assert '<body class="care"' in cared
    assert '<a class="care" href="/care?on=0">标准字号</a>' in cared

    sessions = agent.sessions
    done = screen.get("/reset")
    assert (done.status_code, done.headers["location"]) == (303, "/")
    assert agent.sessions == sessions + 1
    assert '<body class=""' in screen.get("/").text  # the next citizen starts plain


def test_the_idle_countdown_and_wipe_are_on_every_page(
    screen: TestClient, agent: KioskAgent
) -> None:
    page = screen.get("/complaint").text
    assert 'data-idle-s="45.0"' in page
    assert 'data-countdown-s="8.0"' in page
    assert "秒后返回首页并清除已填写的内容" in page
    assert '<button type="button" id="idle-stay">继续使用</button>' in page
    script = screen.get("/static/idle.js")
    assert script.status_code == 200
    assert "/reset" in script.text  # where the countdown ends


def test_each_page_counts_as_a_touch_and_static_files_do_not(
    screen: TestClient, agent: KioskAgent
) -> None:
    clock = agent.clock
    assert isinstance(clock, ManualClock)
    clock.advance(30)
    screen.get("/static/kiosk.css")
    assert agent.last_touch < clock.monotonic()
    screen.get("/info/place")
    assert agent.last_touch == clock.monotonic()


def test_an_anonymous_complaint_is_stored_before_the_receipt_is_shown(
    screen: TestClient, agent: KioskAgent
) -> None:
    filed = screen.post(
        "/complaint",
        data={
            "service_code": "road",
            "description": "  建设路井盖缺失  ",
            "place": "建设路与站前路口",
            "name": "王某",  # typed, then anonymous chosen: not sent
            "phone": "13800000000",
        },
    )
    assert filed.status_code == 303
    where = re.fullmatch(
        r"/receipt/([A-Z0-9-]+)\?printed=none", filed.headers["location"]
    )
    assert where is not None
    [stored] = events(agent, "complaint")
    assert stored["code"] == where[1]
    assert stored["description"] == "建设路井盖缺失"
    assert (stored["real_name"], stored["name"], stored["phone"]) == (False, "", "")
    assert stored["place"] == "建设路与站前路口"

    receipt = screen.get(filed.headers["location"]).text
    assert f'<p class="code" id="code">{where[1]}</p>' in receipt
    assert f"<title>查询码 {where[1]}</title>" in receipt  # the QR code, as SVG
    assert "回执暂时无法打印，请记下上面的查询码。" in receipt


def test_a_real_name_complaint_keeps_name_and_phone(
    screen: TestClient, agent: KioskAgent
) -> None:
    filed = screen.post(
        "/complaint",
        data={
            "service_code": "road",
            "description": "路灯不亮",
            "identity": "real",
            "name": " 李四 ",
            "phone": "13900000000",
        },
    )
    assert filed.status_code == 303
    [stored] = events(agent, "complaint")
    assert (stored["real_name"], stored["name"], stored["phone"]) == (
        True,
        "李四",
        "13900000000",
    )


@pytest.mark.parametrize(
    ("form", "title", "names"),
    [
        ({"description": "   "}, "请填写问题描述", "描述不能为空"),
        ({"description": "字" * 2001}, "请填写问题描述", "最多两千字"),
        (
            {"description": "路灯不亮", "identity": "real", "name": "李四"},
            "实名投诉需要姓名和电话",
            "也可以选择匿名投诉",
        ),
        (
            {"description": "路灯不亮", "identity": "real", "phone": "139"},
            "实名投诉需要姓名和电话",
            "也可以选择匿名投诉",
        ),
    ],
)
def test_a_complaint_form_that_is_not_complete_says_what_is_missing_in_chinese(
    screen: TestClient,
    agent: KioskAgent,
    form: dict[str, str],
    title: str,
    names: str,
) -> None:
    answer = screen.post("/complaint", data={"service_code": "road", **form})
    assert answer.status_code == 200
    text = shown(answer.text)
    assert title in text
    assert names in text
    assert events(agent, "complaint") == []  # nothing was filed


@pytest.mark.parametrize(
    ("printed", "says"),
    [
        ("ok", "回执已打印，请取走。"),
        ("paper_out", "打印机缺纸，请记下上面的查询码。"),
        ("offline", "回执暂时无法打印，请记下上面的查询码。"),
    ],
)
def test_the_receipt_says_what_became_of_the_paper(
    screen: TestClient, printed: str, says: str
) -> None:
    page = screen.get("/receipt/K7QPM2XD", params={"printed": printed}).text
    assert says in shown(page)
    assert '<a class="button" href="/reset">完成</a>' in page


def test_a_rating_is_stored_offline_and_a_bad_score_is_refused(
    screen: TestClient, agent: KioskAgent
) -> None:
    bad = screen.post("/rate", data={"code": "k7qpm2xd", "score": "9"})
    assert "请选择满意度" in shown(bad.text)
    assert events(agent, "rating") == []
    good = screen.post("/rate", data={"code": " k7qpm2xd ", "score": "4"})
    assert "感谢您的评价" in shown(good.text)
    [stored] = events(agent, "rating")
    assert (stored["code"], stored["score"]) == ("K7QPM2XD", 4)


def test_when_central_is_away_lookups_and_bookings_say_so(
    screen: TestClient, agent: KioskAgent
) -> None:
    status = shown(screen.post("/status", data={"code": "K7QPM2XD"}).text)
    assert "网络暂时不通" in status
    assert "您的投诉不会丢失" in status
    slots = shown(screen.get("/book", params={"service": "居民身份证办理"}).text)
    assert "预约需要联网，网络暂时不通，请稍后再试。" in slots
    booked = shown(
        screen.post(
            "/book", data={"slot_id": "1", "name": "李四", "phone": "13900000000"}
        ).text
    )
    assert "网络暂时不通" in booked
    assert "预约需要联网" in booked
    assert agent.central_ok is False


# -- with central's real app on loopback --------------------------------------------
@pytest.fixture
def central_url(sqlite_url: str, tmp_path: Path, serve_app: Any) -> Iterator[str]:
    services = central_services(
        sqlite_url, tmp_path / "central", clock=ManualClock(START)
    )
    services.ca = load_or_create_ca(services.settings, now=START)
    engine = services.engine
    with Session(engine) as session:
        session.add(
            Slot(
                centre="县政务服务中心",
                service="居民身份证办理",
                starts_at=START + timedelta(days=1, hours=1),
                capacity=1,
            )
        )
        session.commit()
    yield serve_app(create_app(services))
    engine.dispose()


def test_with_central_an_unknown_code_is_named_and_a_slot_can_be_booked_once(
    tmp_path: Path, central_url: str, sqlite_url: str
) -> None:
    engine = make_engine(sqlite_url)
    ca = FleetCA.load(tmp_path / "central" / "ca")  # the served central's
    enrolled = enrol_node(  # the kiosk's key and certificate, as enrolment leaves
        engine, ca, device_id="kiosk-1", now=START, directory=tmp_path / "enrolment"
    )
    engine.dispose()
    agent = kiosk_agent(tmp_path / "online", central_url, enrolled)
    halt = running(agent)
    try:
        with TestClient(create_kiosk_app(agent)) as screen:
            unknown = shown(screen.post("/status", data={"code": "NOPE0000"}).text)
            assert "查询码不存在" in unknown
            assert agent.central_ok is True

            slots = screen.get("/book", params={"service": "居民身份证办理"}).text
            assert "县政务服务中心 2026-06-02 03:00（余 1）" in shown(slots)
            slot_id = re.search(r'name="slot_id" value="(\d+)"', slots)
            assert slot_id is not None
            form = {"slot_id": slot_id[1], "name": "李四", "phone": "13900000000"}

            bad_phone = shown(screen.post("/book", data={**form, "phone": "电话"}).text)
            assert "预约未成功" in bad_phone
            assert "请检查姓名和电话" in bad_phone

            booked = shown(screen.post("/book", data=form).text)
            assert "预约成功" in booked
            assert (
                "县政务服务中心 · 居民身份证办理 · 2026-06-02T03:00"
                in booked.replace(" 03:00", "T03:00")
            )
            assert re.search(r"预约码 [A-Z0-9-]+", booked)

            full = shown(
                screen.post("/book", data={**form, "phone": "13700000000"}).text
            )
            assert "该时段可能已约满，请换一个时段。" in full
            gone = shown(screen.get("/book", params={"service": "居民身份证办理"}).text)
            assert "近期没有可约时段" in gone
    finally:
        halt()
