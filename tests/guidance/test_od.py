"""Origin–destination journeys from hashed sightings, read by SUMO's od2trips."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from central.guidance import od
from central.guidance.reid import Passage

H = datetime(2026, 12, 5, 8, tzinfo=UTC)


def _seen(plate: str, *stops: tuple[str, float]) -> list[Passage]:
    return [Passage(cam, plate, H + timedelta(seconds=s)) for cam, s in stops]


def test_journeys_run_from_the_first_camera_to_the_last_within_the_gap() -> None:
    passages = [
        *_seen("v1", ("a", 10), ("b", 200), ("c", 400)),  # a → c through b
        *_seen("v2", ("b", 100), ("a", 300)),
        *_seen("v3", ("a", 50)),  # one camera: no journey
        *_seen("v4", ("a", 60), ("a", 70)),  # read twice at one camera
        *_seen("v5", ("a", 3000), ("b", 3200), ("b", 9000), ("c", 9100)),  # two
    ]
    trips = od.journeys(passages, max_gap_s=1800)
    assert [(o, d) for o, d, _ in trips] == [
        ("a", "c"),
        ("b", "a"),
        ("a", "b"),
        ("b", "c"),
    ]
    counts = od.od_counts(passages, hour=H, max_gap_s=1800)
    assert counts == {("a", "c"): 1, ("b", "a"): 1, ("a", "b"): 1}  # v5's 2nd: 10:30


def test_the_sumo_export_feeds_od2trips(tmp_path: Path) -> None:
    binary = shutil.which("od2trips") or str(Path(sys.executable).parent / "od2trips")
    if not Path(binary).exists():
        pytest.skip("SUMO's od2trips is not installed (eclipse-sumo)")
    matrix = tmp_path / "od.xml"
    matrix.write_text(
        od.to_tazrelations(
            {("cam-a", "cam-b"): 8, ("cam-b", "cam-a"): 4},
            begin_s=0,
            end_s=3600,
            interval_id="08:00",
            scale=1.25,
        ),
        encoding="utf-8",
    )
    taz = tmp_path / "taz.xml"
    taz.write_text(
        '<additional><taz id="cam-a" edges="W0_J1"/>'
        '<taz id="cam-b" edges="J5_E0"/></additional>',
        encoding="utf-8",
    )
    trips = tmp_path / "trips.xml"
    subprocess.run(
        [binary, "-n", str(taz), "-z", str(matrix), "-o", str(trips), "--seed", "1"],
        check=True,
        capture_output=True,
    )
    text = trips.read_text(encoding="utf-8")
    assert text.count("<trip ") == 15  # 10 + 5
    assert 'fromTaz="cam-a" toTaz="cam-b"' in text
    with pytest.raises(ValueError, match="scale"):
        od.to_tazrelations({}, begin_s=0, end_s=3600, interval_id="x", scale=0.5)
