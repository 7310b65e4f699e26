"""The consoles' day charts, in a real browser (Debian's Chromium, Playwright).

The traffic centre opens a junction and sees its detectors loop by loop
(stage, approach, the newest minute, occupancy, faults in Chinese) with each
loop's day as a chart, and the junction's cycle and splits over the day as
the plans changed; the stage timer keeps counting through the amber of a
stage's end, as the cabinet's live state arrives over the real event
stream. The fleet operator's device page shows the node's telemetry of the
day as charts. Central runs without a broker; the detector bins, faults,
plans and telemetry are stored as ingest and the cabinets' reports store
them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlmodel import Session
from support.central import central_services, sender
from support.console import sign_in

from central.app import create_app
from central.fleet import registry
from central.models import Device, Event
from central.operators.auth import create_operator
from central.signals.models import JunctionRow, PlanRow
from central.signals.service import SignalService

if TYPE_CHECKING:
    from collections.abc import Iterator

    from central.api.deps import Services

pytestmark = [pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
PASSWORD = "charts of the day 18"
RUNNING = "#jd-running"


@pytest.fixture
def services(sqlite_url: str, tmp_path: Path) -> Iterator[Services]:
    svc = central_services(sqlite_url, tmp_path)
    svc.signals = SignalService(clock=svc.clock, sender=sender(svc))
    with Session(svc.engine) as s:
        create_operator(
            s, username="root", password=PASSWORD, role="admin", now=svc.clock.now()
        )
    yield svc
    svc.engine.dispose()


def _event(n: int, device: str, kind: str, at: datetime, body: Any) -> Event:
    return Event(
        id=f"00000000-0000-7000-8000-{n:012d}",
        device=device,
        type=kind,
        ts=at,
        received_at=at,
        body=body,
    )


def _junction(svc: Services) -> None:
    """建设路口: a two-stage cabinet, a detector with two loops, two plans."""
    now = svc.clock.now()
    with Session(svc.engine) as s:
        registry.register(
            s, device_id="cab-1", kind="signal_controller", site="rongjiawan", now=now
        )
        registry.register(
            s, device_id="det-1", kind="loop_detector", site="rongjiawan", now=now
        )
        detector = s.get_one(Device, "det-1")
        detector.online = True
        s.add(detector)
        s.add(
            JunctionRow(
                id="cab-1",
                name="建设路口",
                stages=2,
                detectors={"det-1": {"1": [0, 1800, "W"], "2": [1, 1800, "N"]}},
            )
        )
        for n, (hours, cycle, greens) in enumerate(
            ((10, 60.0, [25.0, 27.0]), (2, 90.0, [40.0, 42.0])), start=1
        ):
            at = now - timedelta(hours=hours)
            s.add(
                PlanRow(
                    junction="cab-1",
                    version=f"cab-1-{n}",
                    body={"cycle": cycle, "greens": greens, "offset": 0.0},
                    method="optimise",
                    state="applied",
                    created_by="root",
                    created_at=at,
                    updated_at=at,
                )
            )
        n = 0
        for minutes in range(6 * 60, 0, -10):  # a bin every 10 minutes for 6 h
            n += 1
            lanes = [
                {"lane": 1, "count": 12, "flow_vph": 720, "occupancy_pct": 18.5},
                {"lane": 2, "count": 4, "flow_vph": 240, "occupancy_pct": 61.0},
            ]
            s.add(
                _event(
                    n,
                    "det-1",
                    "detector",
                    now - timedelta(minutes=minutes),
                    {"start": "", "seconds": 60, "lanes": lanes},
                )
            )
        for ago, code, lane, active in (
            (300, "chattering", 1, True),
            (290, "chattering", 1, False),
            (20, "stuck_on", 2, True),
        ):
            n += 1
            s.add(
                _event(
                    n,
                    "det-1",
                    "fault",
                    now - timedelta(minutes=ago),
                    {"code": code, "active": active, "detail": f"lane {lane}"},
                )
            )
        s.commit()


def _state(svc: Services, stage: int, into_s: float, lamp: str) -> None:
    svc.broadcaster.publish(
        {
            "type": "signal_state",
            "junction": "cab-1",
            "mode": "plan",
            "stage": stage,
            "into_s": into_s,
            "plan": "cab-1-2",
            "source": "central",
            "latched": "",
            "groups": {"Ws": {"state": lamp, "since": ""}},
        }
    )


def test_traffic_centre_sees_loops_plans_and_a_stage_timer_through_amber(
    services: Services, serve_app: Any, browser_page: Any
) -> None:
    _junction(services)
    base = serve_app(create_app(services))
    page = browser_page
    page.goto(f"{base}/console/#signals")
    sign_in(page, "root", PASSWORD)
    page.wait_for_selector("#live.on")
    page.click("#junction-rows tr[data-junction=cab-1]")

    # The detector, loop by loop, by stage and approach, faults in Chinese.
    card = "#jd-detectors .detector-card[data-detector=det-1]"
    page.wait_for_selector(card)
    assert "（在线）" in page.inner_text(f"{card} h5")
    one = page.locator(f"{card} tr[data-lane='1'] td").all_inner_texts()
    assert one == ["线圈 1", "第 1 阶段", "西进口", "12 辆", "18.5%", "正常"]
    two = page.locator(f"{card} tr[data-lane='2'] td").all_inner_texts()
    assert two == [
        "线圈 2",
        "第 2 阶段",
        "北进口",
        "4 辆",
        "61%",
        "线圈常占（停车或短路）",
    ]
    assert "error" in (page.get_attribute(f"{card} tr[data-lane='2']", "class") or "")
    assert "信号抖动（感应不稳）" in page.inner_text(f"{card} .fault-history")
    # Each loop's day: 36 bins of 12 vehicles, hour by hour, and occupancy.
    caption = page.inner_text(f"{card} figure.loop-day[data-lane='1'] figcaption")
    assert caption == "线圈 1：近 24 小时 432 辆"
    bars = page.locator(f"{card} figure.loop-day[data-lane='1'] g.bar rect").count()
    assert bars == 24
    assert page.locator(
        f"{card} figure.loop-day[data-lane='2'] g.line polyline"
    ).count()

    # Cycle and splits over the day: the plan of 10 h ago, then the one of 2 h.
    plans = "#jd-plan-figure"
    assert "现行 cab-1-2：周期 90 秒，绿信比 44% / 47%" in page.inner_text(plans)
    steps = page.locator(f"{plans} g.step polyline").count()
    assert steps == 3  # the cycle and each stage's green
    label = page.get_attribute(f"{plans} svg", "aria-label") or ""
    assert "cab-1-1：周期 60 秒" in label
    assert "cab-1-2：周期 90 秒" in label

    # The stage timer: 20 s into stage 1, then its amber. The cabinet's
    # count starts again at the change; the page's does not.
    _state(services, 1, 20.0, "green")
    page.wait_for_function(
        f"document.querySelector('{RUNNING}').textContent.startsWith('第 1 阶段 2')"
    )
    _state(services, 1, 0.0, "yellow")
    page.wait_for_function(
        f"document.querySelector('{RUNNING}').textContent.includes('黄灯过渡')"
    )
    text = page.inner_text(RUNNING)
    assert text.startswith("第 1 阶段结束 · 黄灯过渡 ")
    assert int(text.split("黄灯过渡 ")[1].split(" 秒")[0]) >= 20
    _state(services, 2, 0.0, "red")
    page.wait_for_function(
        f"document.querySelector('{RUNNING}').textContent.startsWith('第 2 阶段')"
    )
    assert page.inner_text(RUNNING).startswith("第 2 阶段结束 · 全红清空 0 秒")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-junction-day.png"), full_page=True)


def test_device_page_charts_the_nodes_telemetry(
    services: Services, serve_app: Any, browser_page: Any
) -> None:
    now = services.clock.now()
    with Session(services.engine) as s:
        registry.register(
            s, device_id="kiosk-3", kind="kiosk", site="rongjiawan", now=now
        )
        for n in range(1, 13):  # an hour apart, the newest 1 h ago
            s.add(
                _event(
                    n,
                    "kiosk-3",
                    "telemetry",
                    now - timedelta(hours=13 - n),
                    {
                        "screen": "on",
                        "sessions": n % 3,
                        "outbox_depth": 10 * n,
                        "link": n != 5,
                    },
                )
            )
        s.commit()
    base = serve_app(create_app(services))
    page = browser_page
    page.goto(f"{base}/console/#device/kiosk-3")
    sign_in(page, "root", PASSWORD)
    page.wait_for_selector("#dv-telemetry figure.telemetry")
    fields = page.eval_on_selector_all(
        "#dv-telemetry figure.telemetry", "(fs) => fs.map((f) => f.dataset.field)"
    )
    assert sorted(fields) == ["link", "outbox_depth", "sessions"]  # not "screen"
    depth = "#dv-telemetry figure[data-field=outbox_depth]"
    assert page.inner_text(f"{depth} figcaption").startswith(
        "遥测 · 待发送消息数：最新 120（"
    )
    assert "共 12 次上报" in page.inner_text(f"{depth} figcaption")
    assert page.locator(f"{depth} polyline").count() == 1
    label = page.get_attribute(f"{depth} svg", "aria-label") or ""
    assert label.startswith("待发送消息数：10、20、30")
    page.screenshot(
        path=str(ARTIFACTS / "console-device-telemetry.png"), full_page=True
    )
