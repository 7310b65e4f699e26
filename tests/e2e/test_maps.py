"""The county map in a real browser: MapLibre on central's own vector tiles.

Central (SQLite; no broker needed for what is drawn here) serves the
console to Debian's Chromium. The police page must show a WebGL map whose
base layer comes from the archive the set-up cut (``/api/v1/maps/tiles``),
zoom on the wheel and on a double-click, pan on a drag, open a cluster of
officers on a click, keep crowded labels from printing over each other, and
pulse the SOS. Screenshots go to ``artifacts/`` for a person to look at.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlmodel import Session
from support.central import central_services
from support.console import sign_in

from central.app import create_app
from central.models import Device
from central.operators.auth import create_operator
from central.police.models import Alarm, Officer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastapi import FastAPI

pytestmark = [pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
ARCHIVE = Path(__file__).resolve().parents[2] / "central/console/map/rongjiawan.mbtiles"
PASSWORD = "map test password 18"
STATION = (113.1180, 29.1450)
CROWD = 20  # officers within ~100 m of the station: one cluster from afar
MAP = "document.querySelector('#police-map').balingMap"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    """Central with an admin, a crowd of officers, one far away, and an SOS."""
    if not ARCHIVE.exists():
        pytest.fail(f"{ARCHIVE} is missing; scripts/setup builds it")
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    svc = central_services(url, tmp_path)
    now = datetime.now(UTC)
    with Session(svc.engine) as s:
        create_operator(s, username="cmd", password=PASSWORD, role="admin", now=now)
        for i in range(CROWD + 1):
            device = f"hh-{i:02d}"
            angle = i * 2 * math.pi / CROWD
            lon, lat = (
                STATION[0] + 0.0008 * math.cos(angle),
                STATION[1] + 0.0006 * math.sin(angle),
            )
            if i == CROWD:  # alone near 县公安局, in the SOS
                lon, lat = 113.1290, 29.1395
            s.add(
                Device(
                    id=device,
                    kind="handheld",
                    site="rongjiawan",
                    online=True,
                    created_at=now,
                )
            )
            s.add(
                Officer(
                    device=device, name=f"民警{i:02d}号", lat=lat, lon=lon, fix_ts=now
                )
            )
        s.add(
            Alarm(
                key="sos-map-1",
                kind="sos",
                device=f"hh-{CROWD:02d}",
                state="raised",
                lat=29.1395,
                lon=113.1290,
                raised_at=now,
                received_at=now,
            )
        )
        s.commit()
    yield create_app(svc)
    svc.engine.dispose()


def _zoom(page: Any) -> float:
    return float(page.evaluate(f"{MAP}.getZoom()"))


def _settle(page: Any) -> None:
    """Wait until the map has finished moving and drawing."""
    page.wait_for_function(f"{MAP}.loaded() && !{MAP}.isMoving()")
    page.evaluate(
        f"new Promise((ok) => {{ {MAP}.once('idle', ok); {MAP}.triggerRepaint(); }})"
    )


def _pan_and_zoom(page: Any) -> dict[str, float]:
    """Wheel, double-click and drag on the map; each must move it."""
    # The wheel zooms in where the pointer is.
    box: dict[str, float] | None = page.locator("#police-map").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    before = _zoom(page)
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, -600)
    page.wait_for_function(f"{MAP}.getZoom() > {before + 0.3}")
    _settle(page)

    # A double-click zooms in one step.
    before = _zoom(page)
    page.mouse.dblclick(cx + 40, cy + 40)
    page.wait_for_function(f"{MAP}.getZoom() > {before + 0.5}")
    _settle(page)

    # A drag pans.
    centre = page.evaluate(f"{MAP}.getCenter().toArray()")
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx - 200, cy - 120, steps=8)
    page.mouse.up()
    _settle(page)
    moved = page.evaluate(f"{MAP}.getCenter().toArray()")
    assert moved[0] > centre[0]
    assert moved[1] < centre[1]

    return box


def test_police_map_pans_zooms_clusters_and_pulses_the_sos(
    app: FastAPI, browser_page: Any, serve_app: Any
) -> None:
    base = serve_app(app)
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 900})
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{base}/console/#police")
    sign_in(page, "cmd", PASSWORD)
    page.wait_for_selector("#police-map canvas.maplibregl-canvas")
    page.wait_for_function(f"{MAP} && {MAP}.getLayer('officers-point')")
    _settle(page)

    # The base map is central's own vector tiles, roads named in Chinese.
    style = page.evaluate(f"{MAP}.getStyle().sources.county")
    assert style["type"] == "vector"
    assert style["tiles"] == [f"{base}/api/v1/maps/tiles/{{z}}/{{x}}/{{y}}.pbf"]
    roads = page.evaluate(
        f"{MAP}.querySourceFeatures('county', {{ sourceLayer: 'rongjiawan' }})"
        ".map((f) => f.properties.name)"
    )
    assert "建设路" in roads

    # From afar the crowd is one counted cluster; the lone officer a point.
    clusters = page.evaluate(
        f"{MAP}.queryRenderedFeatures({{ layers: ['officers-cluster'] }})"
        ".map((f) => f.properties.point_count)"
    )
    assert CROWD in clusters or sum(clusters) >= CROWD - 1

    # The SOS pulses on the map and its officer is marked in the list.
    page.wait_for_selector("#police-map .sos-pulse.flashing")
    page.wait_for_selector("#police-officers .officer.sos[data-device=hh-20]")
    # ... where the officer pressed it, not in a corner of the map.
    pulse = page.locator("#police-map .sos-pulse").bounding_box()
    frame = page.locator("#police-map").bounding_box()
    assert pulse is not None
    assert frame is not None
    at = page.evaluate(f"((p) => [p.x, p.y])({MAP}.project([113.1290, 29.1395]))")
    assert abs(frame["x"] + at[0] - (pulse["x"] + pulse["width"] / 2)) < 3
    assert abs(frame["y"] + at[1] - (pulse["y"] + pulse["height"] / 2)) < 3
    page.screenshot(path=str(ARTIFACTS / "maps-police.png"), full_page=True)

    box = _pan_and_zoom(page)

    # A click on the cluster opens it: the map zooms to where it splits.
    page.evaluate(f"{MAP}.jumpTo({{ center: [{STATION[0]}, {STATION[1]}], zoom: 13 }})")
    _settle(page)
    xy = page.evaluate(
        f"((p) => [p.x, p.y])({MAP}.project([{STATION[0]}, {STATION[1]}]))"
    )
    page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])
    page.wait_for_function(f"{MAP}.getZoom() > 13.5")
    _settle(page)

    # Close in, every officer is a point, and the labels give way instead of
    # printing over each other: fewer are drawn than there are officers.
    page.evaluate(f"{MAP}.jumpTo({{ center: [{STATION[0]}, {STATION[1]}], zoom: 17 }})")
    _settle(page)
    points = page.evaluate(
        f"{MAP}.queryRenderedFeatures({{ layers: ['officers-point'] }}).length"
    )
    labels = page.evaluate(
        f"{MAP}.queryRenderedFeatures({{ layers: ['officers-label'] }})"
        ".map((f) => f.properties.label)"
    )
    assert points >= CROWD - 2
    assert 0 < len(labels) < points
    assert len(set(labels)) == len(labels)
    page.screenshot(path=str(ARTIFACTS / "maps-police-close.png"), full_page=True)
