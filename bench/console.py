"""Console map benchmark: the police page with a county's worth of points.

Central (SQLite, no broker: nothing here needs one) serves the console to
Debian's Chromium, driven by Playwright, with the CPU throttled 4× through
the DevTools protocol (``Emulation.setCPUThrottlingRate``). The registry
holds ``--devices`` devices (cameras, detectors, cabinets, kiosks with a
place) of which ``--officers`` are handhelds with an officer and a fix.

- **Time to interactive**: from the page's navigation start until the map
  has loaded its style and the officer layer has been drawn (the clustered
  officers are on the canvas, ``queryRenderedFeatures`` finds them).
- **Frame time**: then ``--rate`` officer positions a second stream in for
  ``--seconds`` through the real live path (central's ``Broadcaster`` →
  ``/api/v1/stream`` server-sent events → the console's ``EventSource`` →
  ``police.onLive``); MQTT ingest is not part of this figure (bench.ingest
  measures that). Frame times are the deltas between
  ``requestAnimationFrame`` callbacks in the page.

Where the time goes is printed with the figures: the steps before the
officers are drawn (each at the first frame it was seen in), and while
positions stream, how many updates reached the map's officer source, how
many of its tiles were cut again and how many times the map was drawn.

    python -m bench.console [--devices 10000] [--officers 500] [--rate 1000]

Last line: ``console_map_tti_ms=<ms> console_frame_p95_ms=<ms>``.
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session

from baling.broker import free_port
from central.api.deps import Services
from central.app import create_app
from central.audit.log import AuditLog
from central.db import make_engine, migrate
from central.messaging.live import Broadcaster
from central.metrics import Metrics
from central.models import Device
from central.operators.auth import create_operator
from central.police.models import Officer
from central.settings import CentralSettings
from edge.clock import SystemClock

LAT, LON = 29.145, 113.118
SPREAD = 0.02  # degrees around the centre: the town and its outskirts
PASSWORD = "map frames per second 18"  # noqa: S105 - a throwaway operator in a temp database
KINDS = ("camera", "loop_detector", "signal_controller", "kiosk")
TARGET_FRAME_MS = 50

# Runs in the page before any script: records frame deltas once asked to, the
# moment the officer layer is first on the canvas, the steps before it (each
# the first frame it was seen in), and while recording, what the map did.
PROBE = """
window.__frames = []; window.__recording = false; window.__tti = null;
window.__steps = {}; window.__map = { renders: 0, updates: 0, tiles: 0 };
(function tick(last) {
  requestAnimationFrame((now) => {
    if (window.__recording) window.__frames.push(now - last);
    if (window.__tti === null) {
      const step = (k, seen) => {
        if (seen && !(k in window.__steps)) window.__steps[k] = now;
      };
      const shell = document.querySelector("#shell");
      step("console shown (signed in)", shell && !shell.hidden);
      const box = document.querySelector("#police-map");
      const map = box && box.balingMap;
      step("map created", map);
      if (map) {
        step("style in", map.style && map.style._loaded);
        step("officer layers added with the list", map.getLayer("officers-point"));
        const src = map.getSource("officers");
        const data = src && src._data;
        const held = data && (data.geojson ? data.geojson.features.length
          : data.updateable ? data.updateable.size : 0);
        step("officers handed to the map", held);
        step("every source loaded", map.loaded());
      }
      if (map && !map.__probed) {
        map.__probed = true;
        const count = (k) => { if (window.__recording) window.__map[k]++; };
        map.on("render", () => count("renders"));
        map.on("data", (e) => {
          if (e.sourceId === "officers" && e.tile) count("tiles");
        });
      }
      if (map && map.getLayer("officers-point") && map.loaded()) {
        const layers = ["officers-point", "officers-cluster"];
        const drawn = map.queryRenderedFeatures({ layers });
        if (drawn.length) window.__tti = performance.now();
      }
    }
    tick(now);
  });
})(performance.now());
"""


def _populate(url: str, *, devices: int, officers: int, rng: random.Random) -> None:
    engine = make_engine(url)
    migrate(engine)
    now = datetime.now(UTC)
    with Session(engine) as session:
        create_operator(
            session, username="bench", password=PASSWORD, role="admin", now=now
        )
        for i in range(devices):
            lat = LAT + rng.uniform(-SPREAD, SPREAD)
            lon = LON + rng.uniform(-SPREAD, SPREAD)
            handheld = i < officers
            device_id = f"hh-{i:05d}" if handheld else f"dev-{i:05d}"
            session.add(
                Device(
                    id=device_id,
                    kind="handheld" if handheld else KINDS[i % len(KINDS)],
                    site="rongjiawan",
                    lat=None if handheld else lat,
                    lon=None if handheld else lon,
                    online=True,
                    created_at=now,
                )
            )
            if handheld:
                session.add(
                    Officer(
                        device=device_id,
                        name=f"警员{i:03d}",
                        badge=f"{430621 + i}",
                        unit=f"巡逻{i % 5 + 1}中队",
                        lat=lat,
                        lon=lon,
                        fix_ts=now,
                        battery=80.0,
                    )
                )
        session.commit()
    engine.dispose()


def _serve(app: Any) -> tuple[str, uvicorn.Server, threading.Thread]:  # noqa: ANN401
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, thread


def _stream(
    broadcaster: Broadcaster,
    *,
    officers: int,
    rate: int,
    seconds: float,
    stop: threading.Event,
) -> int:
    """Publish ``rate`` officer positions a second, paced in 10 ms slices."""
    sent = 0
    start = time.monotonic()
    while not stop.is_set() and time.monotonic() - start < seconds:
        due = int((time.monotonic() - start) * rate)
        ts = datetime.now(UTC).isoformat()
        while sent < due:
            i = sent % officers
            angle = sent / 50.0 + i
            broadcaster.publish(
                {
                    "type": "officer",
                    "device": f"hh-{i:05d}",
                    "lat": LAT + SPREAD * 0.8 * math.sin(angle) * (i % 7 + 1) / 7,
                    "lon": LON + SPREAD * 0.8 * math.cos(angle) * (i % 5 + 1) / 5,
                    "fix_ts": ts,
                    "speed_mps": 1.4,
                }
            )
            sent += 1
        time.sleep(0.01)
    return sent


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def main() -> None:  # noqa: PLR0915 - one linear script
    """Run the benchmark and print its figures (the last line is the summary)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--officers", type=int, default=500)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--throttle", type=float, default=4.0)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - dev extra

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    rng = random.Random(18)
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'central.sqlite3'}"
        _populate(url, devices=args.devices, officers=args.officers, rng=rng)
        engine = make_engine(url)
        broadcaster = Broadcaster(maxsize=100_000)
        svc = Services(
            settings=CentralSettings(
                database_url=url, jwt_secret="b" * 40, data_dir=Path(tmp)
            ),
            engine=engine,
            metrics=Metrics(),
            clock=SystemClock(),
            broadcaster=broadcaster,
            audit=AuditLog(engine, Ed25519PrivateKey.generate()),
        )
        base, server, thread = _serve(create_app(svc))
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=chromium,
                    args=[
                        "--no-sandbox",
                        "--use-angle=swiftshader",
                        "--enable-unsafe-swiftshader",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--no-first-run",
                    ],
                )
                page = browser.new_page(
                    locale="zh-CN", viewport={"width": 1366, "height": 900}
                )
                page.goto(f"{base}/console/")
                page.fill("input[name=username]", "bench")
                page.fill("input[name=password]", PASSWORD)
                page.click("#login-form button[type=submit]")
                page.wait_for_selector("#live.on")
                # A fresh load of the police page, throttled, signed in by
                # the refresh cookie as an operator coming back would be.
                page.add_init_script(PROBE)
                cdp = page.context.new_cdp_session(page)
                cdp.send("Emulation.setCPUThrottlingRate", {"rate": args.throttle})
                page.goto(f"{base}/console/?fresh=1#police")  # a new document
                page.wait_for_function(
                    "typeof window.__tti === 'number'", timeout=120_000
                )
                tti = float(page.evaluate("window.__tti"))
                steps = page.evaluate("window.__steps")
                # When the officer list came (resource timing, read afterwards).
                for name, at in page.evaluate(
                    "(() => { const e = performance.getEntriesByType('resource')"
                    ".find((r) => new URL(r.name).pathname"
                    " === '/api/v1/police/officers');"
                    " return e ? [['officer list requested', e.startTime],"
                    " ['officer list received', e.responseEnd]] : []; })()"
                ):
                    steps[name] = at
                page.wait_for_selector("#live.on", timeout=60_000)
                page.wait_for_timeout(1000)
                # Baseline in the same run: the same page with nothing arriving.
                page.evaluate("window.__recording = true")
                page.wait_for_timeout(3000)
                page.evaluate("window.__recording = false")
                idle = [float(x) for x in page.evaluate("window.__frames")]
                page.evaluate(
                    "window.__frames = []; window.__recording = true;"
                    "const s = document.querySelector('#police-map').balingMap"
                    ".getSource('officers'); const u = s.updateData.bind(s);"
                    "s.updateData = (...a) => {"
                    " window.__map.updates++; return u(...a); };"
                )
                stop = threading.Event()
                sent = _stream(
                    broadcaster,
                    officers=args.officers,
                    rate=args.rate,
                    seconds=args.seconds,
                    stop=stop,
                )
                page.evaluate("window.__recording = false")
                frames = [float(x) for x in page.evaluate("window.__frames")]
                work = page.evaluate("window.__map")
                drawn = page.evaluate(
                    "document.querySelector('#police-map').balingMap"
                    ".querySourceFeatures('officers').length"
                )
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            engine.dispose()
    p95 = _percentile(frames, 0.95)
    idle_p95 = _percentile(idle, 0.95)
    print(f"devices={args.devices} officers={args.officers} throttle={args.throttle}x")
    print(f"time to interactive (map loaded, officers drawn): {tti:.0f} ms")
    for name, at in sorted(steps.items(), key=lambda kv: kv[1]):
        print(f"  {at:6.0f} ms  {name}")
    print(
        f"streamed {sent} positions in {args.seconds:.0f} s "
        f"({sent / args.seconds:.0f}/s) over the live SSE stream"
    )
    print(
        f"baseline, nothing streaming: {len(idle)} frames in 3 s, p95 {idle_p95:.1f} ms"
    )
    print(
        f"frames: {len(frames)}, median {statistics.median(frames):.1f} ms, "
        f"p95 {p95:.1f} ms, max {max(frames):.1f} ms; "
        f"officer features in the map's source afterwards: {drawn}"
    )
    slow = sum(1 for f in frames if f > TARGET_FRAME_MS)
    print(
        f"where the frames went: {work['updates']} officer updates to the map, "
        f"{work['tiles']} officer tiles re-cut, {work['renders']} map renders; "
        f"{slow} frames over {TARGET_FRAME_MS} ms"
    )
    print(f"console_map_tti_ms={tti:.0f} console_frame_p95_ms={p95:.1f}")


if __name__ == "__main__":
    main()
