"""The kiosk's pages as the on-screen keyboard and the receipt copy need them.

Served by FastAPI's client around a real kiosk agent built offline (content
from its cache, complaints into its SQLite outbox, no printer): each text
field says which keyboard it takes, the receipt page shows a copy of what
the printer is sent, and the end of a session drops that copy. What the
keyboard does in a browser is ``test_kiosk_keyboard.py``'s.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from support.nodes import node_config

from baling.broker import free_port
from edge.clock import ManualClock
from edge.node import build_agent
from kiosk.agent import KioskAgent
from kiosk.settings import KioskSettings
from kiosk.web import create_kiosk_app

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

START = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
CONTENT = {
    "version": "c1",
    "items": {"guide": [{"title": "户籍办理", "body": "户籍窗口", "extra": {}}]},
    "services": [{"code": "road", "group": "城市管理", "name": "道路破损"}],
}


@pytest.fixture
def screen(tmp_path: Path) -> Iterator[TestClient]:
    settings = node_config(
        KioskSettings,
        device_id="kiosk-1",
        kind="kiosk",
        tmp_path=tmp_path,
        broker_port=free_port(),  # the link is never started
        central_url=f"http://127.0.0.1:{free_port()}",  # central away
        printer_url="",
    )
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "content.json").write_text(
        json.dumps(CONTENT, ensure_ascii=False), encoding="utf-8"
    )
    agent = build_agent(KioskAgent, settings, clock=ManualClock(START))
    stop = threading.Event()

    def loop() -> None:  # the agent's loop stores what the screen hands over
        while not stop.is_set():
            agent.step()
            stop.wait(0.01)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    with TestClient(create_kiosk_app(agent), follow_redirects=False) as client:
        yield client
    stop.set()
    thread.join(timeout=5)
    agent.outbox.close()


def keyboards(page: str) -> dict[str, str]:
    """Each text field's name and the keyboard it asks for (``data-kb``)."""
    found: dict[str, str] = {}
    for tag in re.findall(r"<(?:input|textarea)\b[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        kind = re.search(r'type="([^"]+)"', tag)
        if name is None or (kind is not None and kind[1] in {"hidden", "radio"}):
            continue
        board = re.search(r'data-kb="([^"]+)"', tag)
        found[name[1]] = board[1] if board else ""
    return found


def test_every_text_field_names_its_keyboard(screen: TestClient) -> None:
    assert keyboards(screen.get("/complaint").text) == {
        "name": "pinyin",
        "phone": "phone",
        "place": "pinyin",
        "description": "pinyin",
    }
    assert keyboards(screen.get("/status").text) == {"code": "code"}
    assert keyboards(screen.get("/info/notice").text) == {"q": "pinyin"}
    booking = screen.get("/book", params={"service": "户籍办理"}).text
    assert "预约需要联网" in booking  # central away: no slots, so no fields
    page = screen.get("/").text
    assert '<script type="module" src="/static/keyboard.js"></script>' in page
    assert screen.get("/static/keyboard.js").status_code == 200


def test_the_receipt_page_shows_what_the_printer_is_sent_until_the_session_ends(
    screen: TestClient,
) -> None:
    filed = screen.post(
        "/complaint",
        data={"service_code": "road", "description": "路灯坏了", "place": "建设路"},
    )
    where = filed.headers["location"]
    code = re.fullmatch(r"/receipt/(\w+)\?printed=none", where)
    assert code is not None
    page = screen.get(where).text
    paper = page.split('<div class="paper" id="paper">', 1)[1].split("</div>", 1)[0]
    lines = [" ".join(re.sub(r"<[^>]+>", " ", p).split()) for p in paper.split("</p>")]
    assert [line for line in lines if line] == [
        "数字巴陵 投诉举报回执",
        f"查询码：{code[1]}",
        "类别：道路破损",
        f"提交时间：{START.astimezone().strftime('%Y-%m-%d %H:%M')}",
        "信息亭：kiosk-1",
        "匿名",
        f"［二维码：{code[1]}］",
        "凭查询码在任意信息亭或12345查询办理进度",
    ]
    assert "回执内容（未能打印，请记下）" in page  # no printer here
    screen.get("/reset")
    assert 'id="paper"' not in screen.get(where).text  # the next citizen sees none
