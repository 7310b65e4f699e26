"""Kiosk page speed on a Pi-class budget: Chromium with the CPU throttled 4×.

Starts a broker and the real kiosk agent (its web app, with content cached
as it would be after a sync) and loads the home page and the complaint form
ten times each in headless Chromium (Debian's, driven by Playwright) with
DevTools' CPU throttling at 4×. First contentful paint comes from the
paint timing; time to interactive is taken as the later of DOMContentLoaded
end and the end of the last long task (> 50 ms) before the page went quiet.
Medians of 10. Last line: ``kiosk_tti_ms=<ms>`` (the slower page's median).
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from baling.broker import Mosquitto, free_port
from edge.node import build_agent
from kiosk.agent import KioskAgent
from kiosk.settings import KioskSettings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CONTENT = {
    "items": {
        "notice": [
            {
                "id": 1,
                "title": "关于冬季供暖的通知",
                "body": "12月1日起集中供暖。",
                "extra": {},
            }
        ],
        "guide": [
            {"id": 2, "title": "户籍办理", "body": "携带身份证、户口簿。", "extra": {}}
        ],
        "place": [
            {
                "id": 3,
                "title": "荣家湾广场",
                "body": "建设路与站前路交叉口",
                "extra": {},
            }
        ],
        "utility": [],
    },
    "services": [
        {"code": "noise", "name": "噪音扰民", "group": "投诉", "description": ""},
        {"code": "road", "name": "道路破损", "group": "举报", "description": ""},
    ],
    "version": "bench",
}
TIMING = """() => new Promise((done) => {
  const longTasks = [];
  new PerformanceObserver((list) => longTasks.push(...list.getEntries()))
    .observe({type: "longtask", buffered: true});
  setTimeout(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const fcp = performance.getEntriesByName("first-contentful-paint")[0];
    const paint = fcp ? fcp.startTime : 0;
    const lastLong = longTasks.reduce(
      (m, t) => Math.max(m, t.startTime + t.duration), 0);
    done({fcp: paint, tti: Math.max(nav.domContentLoadedEventEnd, lastLong, paint)});
  }, 600);
})"""


def measure(page: Any, url: str, runs: int) -> tuple[list[float], list[float]]:  # noqa: ANN401
    """Load ``url`` ``runs`` times; return FCPs and TTIs in ms."""
    fcp, tti = [], []
    for _ in range(runs):
        page.goto("about:blank")
        page.goto(url, wait_until="load")
        result = page.evaluate(TIMING)
        fcp.append(float(result["fcp"] or 0))
        tti.append(float(result["tti"]))
    return fcp, tti


def main() -> None:
    """Run the benchmark and print its figures."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-kiosk-"))
    broker = Mosquitto(data_dir=tmp / "broker")
    broker.start()
    data = tmp / "kiosk"
    data.mkdir()
    (data / "content.json").write_text(
        json.dumps(CONTENT, ensure_ascii=False), encoding="utf-8"
    )
    port = free_port()
    agent = build_agent(
        KioskAgent,
        KioskSettings(
            device_id="kiosk-bench",
            kind="kiosk",
            data_dir=data,
            broker_port=broker.port,
            central_url="http://127.0.0.1:9",
            http_port=port,
            printer_url="",
        ),
    )
    stop = threading.Event()
    threading.Thread(target=agent.run, args=(stop,), daemon=True).start()
    while agent.server is None or not agent.server.started:
        time.sleep(0.05)
    results = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(
                viewport={"width": 1080, "height": 1920}, locale="zh-CN"
            )
            cdp = page.context.new_cdp_session(page)
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
            for name, path in (("home", "/"), ("complaint form", "/complaint")):
                measure(page, f"http://127.0.0.1:{port}{path}", 2)  # warm the server
                fcp, tti = measure(page, f"http://127.0.0.1:{port}{path}", 10)
                results[name] = statistics.median(tti)
                print(
                    f"{name}: FCP median {statistics.median(fcp):.0f} ms, "
                    f"TTI median {statistics.median(tti):.0f} ms "
                    "(CPU 4x slower, 10 loads)"
                )
            browser.close()
    finally:
        stop.set()
        time.sleep(0.5)
        broker.stop(kill=True)
    print(f"kiosk_tti_ms={max(results.values()):.0f}")


if __name__ == "__main__":
    main()
