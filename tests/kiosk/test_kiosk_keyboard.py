"""The kiosk's on-screen keyboard in Debian's Chromium, tapped as a citizen would.

The kiosk is the real agent built offline (content from its cache, central
away, complaints into its SQLite outbox), printing on the ESC/POS printer
simulator, its web app served on loopback. Chromium taps the keys
(simple-keyboard's), the pinyin candidates and the pages of candidates; the
page's clock is Playwright's, so the idle wipe needs no waiting.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.nodes import node_config
from support.waiting import wait_until

from baling.broker import free_port
from edge.clock import ManualClock
from edge.node import build_agent
from firmware_sim.printer import PrinterSimulator
from kiosk.agent import KioskAgent
from kiosk.settings import KioskSettings
from kiosk.web import create_kiosk_app

if TYPE_CHECKING:
    from collections.abc import Iterator

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
START = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
IDLE_S, COUNTDOWN_S = 30, 5
# Notices of every length from 20 to 70 characters: at any width some of them
# would end on one lone character if lines were filled greedily.
TEXT = (
    "县城管局将于下周对建设路沿线的路灯进行检修"
    "届时部分路段夜间照明会受到影响请市民出行注意安全绕行"
)
NOTICES = [
    {"title": f"通知{n}", "body": (TEXT * 2)[:n], "extra": {}} for n in range(20, 71)
]
CONTENT = {
    "version": "c1",
    "items": {"notice": NOTICES},
    "services": [{"code": "light", "group": "城市管理", "name": "路灯损坏"}],
}
# For each paragraph: how many lines, and how many characters the last one has.
LINES = """(selector) => [...document.querySelectorAll(selector)].map((p) => {
  const text = p.firstChild, tops = [];
  for (let i = 0; i < text.length; i += 1) {
    const r = document.createRange(); r.setStart(text, i); r.setEnd(text, i + 1);
    tops.push(Math.round(r.getClientRects()[0].top));
  }
  const last = tops.at(-1);
  return { lines: new Set(tops).size, last: tops.filter((t) => t === last).length };
})"""


@pytest.fixture
def kiosk(tmp_path: Path, serve_app: Any) -> Iterator[tuple[str, PrinterSimulator]]:
    printer = PrinterSimulator()
    stop = threading.Event()
    threading.Thread(target=printer.run, args=(stop,), daemon=True).start()
    settings = node_config(
        KioskSettings,
        device_id="kiosk-1",
        kind="kiosk",
        tmp_path=tmp_path,
        broker_port=free_port(),  # the link is never started
        central_url=f"http://127.0.0.1:{free_port()}",  # central away
        printer_url=printer.path,
        idle_s=IDLE_S,
        countdown_s=COUNTDOWN_S,
    )
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "content.json").write_text(
        json.dumps(CONTENT, ensure_ascii=False), encoding="utf-8"
    )
    agent = build_agent(KioskAgent, settings, clock=ManualClock(START))

    def loop() -> None:  # the agent's loop stores and prints what the screen hands
        while not stop.is_set():
            agent.step()
            stop.wait(0.01)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield serve_app(create_kiosk_app(agent)), printer
    stop.set()
    thread.join(timeout=5)
    agent.outbox.close()
    printer.close()


def tap(page: Any, keys: str) -> None:
    """Tap the on-screen keys, one character each."""
    for key in keys:
        page.click(f'#kb .hg-button[data-skbtn="{key}"]')


def choose(page: Any, character: str) -> None:
    """Tap a candidate shown in the strip above the keys."""
    page.click(f'#kb-cands button:text-is("{character}")')


def candidates(page: Any) -> list[str]:
    """The candidates on the page shown."""
    shown: list[str] = page.eval_on_selector_all(
        "#kb-cands button", "(bs) => bs.map((b) => b.textContent)"
    )
    return shown


def test_a_complaint_typed_in_pinyin_is_filed_and_its_receipt_shown(
    kiosk: tuple[str, PrinterSimulator], browser_page: Any
) -> None:
    base, printer = kiosk
    page = browser_page
    page.set_viewport_size({"width": 1080, "height": 1600})  # a portrait kiosk
    page.goto(base + "/complaint")
    page.click("textarea[name=description]")
    page.wait_for_selector("#kb:not([hidden])[data-mode=pinyin]")

    # 路灯坏了: lu deng huai le, one syllable at a time, as on a phone.
    tap(page, "lu")
    assert page.inner_text("#kb-pinyin") == "lu"
    assert candidates(page)[:3] == ["路", "六", "陆"]
    choose(page, "路")
    tap(page, "deng")
    first = candidates(page)
    assert "灯" in first
    page.click("#kb-next")  # candidates come a page at a time
    assert candidates(page)[0] not in first
    page.click("#kb-prev")
    assert candidates(page) == first
    choose(page, "灯")
    tap(page, "huaile")  # two syllables at once: the first is offered first
    assert page.inner_text("#kb-pinyin") == "huai'le"
    choose(page, "坏")
    assert page.inner_text("#kb-pinyin") == "le"
    page.click('#kb .hg-button[data-skbtn="{space}"]')  # space takes the first: 了
    assert page.input_value("textarea[name=description]") == "路灯坏了"
    tap(page, "a")
    page.click('#kb .hg-button[data-skbtn="{bksp}"]')  # drops the letter, not 了
    page.click('#kb .hg-button[data-skbtn="{digits}"]')
    tap(page, "3")
    page.click('#kb .hg-button[data-skbtn="{pinyin}"]')
    tap(page, "tian")
    choose(page, "天")
    tap(page, "。")
    assert page.input_value("textarea[name=description]") == "路灯坏了3天。"

    _real_name_and_phone(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "kiosk-keyboard.png"))

    page.click("form[action='/complaint'] button[type=submit]")
    code = page.inner_text("#code").strip()
    assert "回执已打印" in page.inner_text("main")
    paper = [line for line in page.inner_text("#paper").splitlines() if line]
    printed = wait_until(lambda: [r for r in printer.receipts if code in r.qr])[0]
    # the screen's copy is the paper's text, line for line (the QR as its content)
    assert [line for line in paper if not line.startswith("［二维码")] == [
        line for line in printed.lines if line
    ]
    assert "回执副本（与打印内容相同）" in page.inner_text("main")
    assert "类别：路灯损坏" in paper


def test_the_idle_wipe_drops_what_the_keyboard_holds(
    kiosk: tuple[str, PrinterSimulator], browser_page: Any
) -> None:
    base, _ = kiosk
    page = browser_page
    page.clock.install()
    page.goto(base + "/complaint")
    page.click("textarea[name=description]")
    tap(page, "lu")
    choose(page, "路")
    tap(page, "deng")  # letters being composed, not yet in the field
    assert page.evaluate("window.kioskKeyboard.snapshot()")["letters"] == "deng"
    # What the page holds as it is left: the keyboard's state and the field.
    page.evaluate(
        """() => addEventListener("pagehide", () => sessionStorage.setItem("left",
        JSON.stringify({...window.kioskKeyboard.snapshot(),
          field: document.querySelector("textarea[name=description]").value})))"""
    )
    page.clock.run_for((IDLE_S + COUNTDOWN_S + 1) * 1000)
    page.wait_for_url(base + "/")
    left = json.loads(page.evaluate("sessionStorage.getItem('left')"))
    assert left == {
        "open": False,
        "mode": "pinyin",
        "letters": "",
        "recorded": "",
        "field": "",
    }


def test_large_text_mode_leaves_no_character_alone_on_a_line(
    kiosk: tuple[str, PrinterSimulator], browser_page: Any
) -> None:
    base, _ = kiosk
    page = browser_page
    page.set_viewport_size({"width": 1080, "height": 1600})
    page.goto(base + "/care?on=1")
    page.goto(base + "/info/notice")
    assert "care" in (page.get_attribute("body", "class") or "")
    shown = page.evaluate(LINES, "article.card p")
    assert len(shown) == len(NOTICES)
    assert max(p["lines"] for p in shown) >= 2  # the large size wraps
    assert [p for p in shown if p["lines"] > 1 and p["last"] < 2] == []
    # the check itself: filled greedily, some of these notices would orphan one
    page.add_style_tag(content="article.card p { text-wrap: wrap !important; }")
    greedy = page.evaluate(LINES, "article.card p")
    assert [p for p in greedy if p["lines"] > 1 and p["last"] < 2] != []

    # The keyboard's keys are large enough for a finger in 适老化 too.
    page.goto(base + "/status")
    page.click("input[name=code]")
    page.wait_for_selector("#kb:not([hidden])[data-mode=code]")
    sizes = page.eval_on_selector_all(
        "#kb .hg-button",
        "(bs) => bs.map((b) => [b.dataset.skbtn, b.offsetWidth, b.offsetHeight])",
    )
    assert {key for key, _, _ in sizes} >= set("23456789ABCDEFGHJKLMNPQRSTUVWXYZ")
    assert not {"0", "1", "I", "O"} & {key for key, _, _ in sizes}
    assert [s for s in sizes if s[1] < 60 or s[2] < 80] == []
    tap(page, "K7QPM2XD")
    assert page.input_value("input[name=code]") == "K7QPM2XD"


def test_pinyin_composition_splits_syllables_and_offers_unfinished_ones(
    kiosk: tuple[str, PrinterSimulator], browser_page: Any
) -> None:
    base, _ = kiosk
    page = browser_page
    page.goto(base + "/")
    composed = page.evaluate(
        """async (typed) => {
          const ime = await import("/static/ime.js");
          const table = (await import("/static/vendor/simple-keyboard-chinese.js"))
            .default.layoutCandidates;
          return typed.map((letters) => {
            const { candidates, used } = ime.compose(letters, table);
            return [ime.spelled(letters, table), candidates.slice(0, 3).join(""),
                    ime.afterChoosing(letters, used)];
          });
        }""",
        ["xian", "xi'an", "zh", "din", "ludeng", "lx"],
    )
    assert composed == [
        ["xian", "现先县", ""],  # the longest syllable
        ["xi'an", "系西席", "an"],  # split by the 分隔 key: 西 then 安
        ["zh", "查这制", ""],  # unfinished: the first of zha, zhe, zhi, …
        ["din", "定", ""],  # only ding begins with din
        ["lu'deng", "路六陆", "deng"],
        ["lx", "", "lx"],  # nothing to offer: the letters stay
    ]


def _real_name_and_phone(page: Any) -> None:
    """A real name in pinyin, then the phone number on the numeric pad."""
    page.check("input[name=identity][value=real]")
    page.click("input[name=name]")
    tap(page, "wang")
    choose(page, "王")
    page.click('#kb .hg-button[data-skbtn="{enter}"]')  # 确认: the keyboard goes
    page.wait_for_selector("#kb", state="hidden")
    page.click("input[name=phone]")
    page.wait_for_selector("#kb:not([hidden])[data-mode=phone]")
    assert page.locator('#kb .hg-button[data-skbtn="a"]').count() == 0
    tap(page, "13900000000")
    page.click('#kb .hg-button[data-skbtn="{enter}"]')
    assert page.input_value("input[name=name]") == "王"
    assert page.input_value("input[name=phone]") == "13900000000"
