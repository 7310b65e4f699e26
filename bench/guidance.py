"""Guidance benchmark: travel times and incident alarms on SUMO's scenario B.

On the judge's arterial (``../shared/bench/sumo``, scenario B: five signals
under SUMO's actuated control, 1,200 veh/h eastbound and 800 westbound),
each seed:

* **cameras** at both ends of the arterial (100 m into ``W0_J1``,
  ``J5_E0``, ``E0_J5`` and ``J1_W0``; SUMO's instant induction loops give
  each vehicle's passage) read every vehicle's plate with a read-accuracy
  model: a read is missed with ``--miss`` (10 %), and misread (one
  character wrong) with ``--misread`` (5 %);
* **loops** in every lane 30 m after each junction and 60 m before each
  stop line of the arterial (1-minute occupancy bins, as the detector
  nodes send);
* **a blocked lane**: a vehicle breaks down in the middle through lane of a
  random arterial approach, 20–45 m before the stop line, at a random time
  between 20 and 40 minutes, for 15 minutes.

Baling's own code then estimates the travel time per minute of each
direction (:mod:`central.guidance.reid` on keyed plate hashes,
:mod:`central.guidance.traveltime`), compared with the mean true travel
time of the vehicles that made the trip and arrived in that minute (all of
them, read or not), and runs the incident detectors
(:mod:`central.guidance.incident`) minute by minute as central would.

    python -m bench.guidance [--seeds 1-10] [--judge ../shared/bench/sumo]
    python -m bench.guidance --record FILE --seeds 1   # the detector series

The first five minutes, while the network fills from empty, give no
figures and no alarms. Last line: ``tt_mape=<0..1> incident_detect_s=<s>
incident_false_per_h=<n>``
(the mean over seeds; detection time over the incidents found; false
alarms are all alarms on other links, or on the incident's link outside the
incident, per simulated hour of the whole arterial).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from central.guidance import incident, reid, traveltime
from edge.protocol.plates import PROVINCES, SERIAL

ROOT = Path(__file__).resolve().parents[1]
ARTERIAL = ("J1_J2", "J2_J3", "J3_J4", "J4_J5", "J5_J4", "J4_J3", "J3_J2", "J2_J1")
# (origin camera edge and its lanes, destination camera edge and its lanes)
LINKS = {
    "EB": (("W0_J1", 3), ("J5_E0", 2)),
    "WB": (("E0_J5", 3), ("J1_W0", 2)),
}
CAMERA_POS = 100.0
EXIT_LOOP_M = 30.0
APPROACH_LOOP_M = 60.0
THROUGH_LANES = (0, 1)  # lane 2 is the left-turn lane
END_S = 3600
WARM_UP_MIN = 5  # the network fills from empty: no figure, no alarm before
T0 = datetime(2026, 12, 5, tzinfo=UTC)
LIMIT_MPS = 13.89  # the arterial's speed limit


@dataclass
class SeedResult:
    """What one seed measured."""

    seed: int
    mape: float
    loops_mape: float
    minutes: int
    incident_edge: str
    incident_start: float
    detect_s: float | None
    false_alarms: int
    alarms: list[tuple[str, float]] = field(default_factory=list)


def _lane_lengths(net: Path) -> dict[str, float]:
    root = ET.parse(net).getroot()  # noqa: S314 - the judge's net file
    return {
        lane.get("id", ""): float(lane.get("length", 0)) for lane in root.iter("lane")
    }


def _additional(work: Path, lengths: dict[str, float]) -> Path:
    lines = ["<additional>"]
    for edge in ARTERIAL:
        for i in range(3):
            lane = f"{edge}_{i}"
            end = lengths[lane] - APPROACH_LOOP_M
            lines.append(
                f'<inductionLoop id="x|{edge}|{i}" lane="{lane}" '
                f'pos="{EXIT_LOOP_M}" freq="60" file="{work / "loops.xml"}"/>'
            )
            lines.append(
                f'<inductionLoop id="a|{edge}|{i}" lane="{lane}" '
                f'pos="{end:.1f}" freq="60" file="{work / "loops.xml"}"/>'
            )
    for (o_edge, o_n), (d_edge, d_n) in LINKS.values():
        for edge, n in ((o_edge, o_n), (d_edge, d_n)):
            lines.extend(
                f'<instantInductionLoop id="c|{edge}|{i}" lane="{edge}_{i}" '
                f'pos="{CAMERA_POS}" file="{work / "cams.xml"}"/>'
                for i in range(n)
            )
    lines.append("</additional>")
    path = work / "add.xml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _incident_routes(
    work: Path, rng: random.Random, lengths: dict[str, float]
) -> tuple[Path, str]:
    edge = rng.choice(ARTERIAL)
    stop = lengths[f"{edge}_1"] - rng.uniform(20, 45)
    start = rng.uniform(1200, 2400)
    path = work / "incident.rou.xml"
    path.write_text(
        '<routes><vType id="broken" vClass="passenger"/>'
        f'<vehicle id="incident" type="broken" depart="{start:.0f}" departLane="1" '
        f'departPos="{stop - 6:.1f}" departSpeed="0"><route edges="{edge}"/>'
        f'<stop lane="{edge}_1" endPos="{stop:.1f}" duration="900"/></vehicle>'
        "</routes>",
        encoding="utf-8",
    )
    return path, edge


def run_sumo(judge: Path, seed: int, work: Path) -> tuple[str, float]:
    """One SUMO run with the detectors and a blocked lane; its outputs in ``work``.

    Returns:
        The blocked edge and when the blockage started (s).
    """
    scenario = judge / "scenarios" / "B"
    net = scenario / "net_actuated.net.xml"
    lengths = _lane_lengths(net)
    rng = random.Random(seed * 7919)
    add = _additional(work, lengths)
    routes, edge = _incident_routes(work, rng, lengths)
    sumo = shutil.which("sumo") or str(Path(sys.executable).parent / "sumo")
    subprocess.run(
        [
            sumo,
            "-n",
            str(net),
            "-r",
            f"{scenario / 'routes.rou.xml'},{routes}",
            "-a",
            str(add),
            "--seed",
            str(seed),
            "--begin",
            "0",
            "--end",
            str(END_S + 600),
            "--time-to-teleport",
            "-1",
            "--stop-output",
            str(work / "stops.xml"),
            "--no-step-log",
            "true",
            "--no-warnings",
            "true",
            "--duration-log.disable",
            "true",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    stops = ET.parse(work / "stops.xml").getroot()  # noqa: S314
    started = next(
        float(s.get("started", "nan"))
        for s in stops.iter("stopinfo")
        if s.get("id") == "incident"
    )
    return edge, started


def read_loops(path: Path) -> dict[tuple[str, str], dict[int, dict[int, float]]]:
    """(station, edge) → minute → lane → occupancy (%) from SUMO's loop output."""
    out: dict[tuple[str, str], dict[int, dict[int, float]]] = {}
    for interval in ET.parse(path).getroot().iter("interval"):  # noqa: S314
        station, edge, lane = interval.get("id", "").split("|")
        minute = int(float(interval.get("begin", 0))) // 60
        series = out.setdefault((station, edge), {})
        series.setdefault(minute, {})[int(lane)] = float(interval.get("occupancy", 0))
    return out


def read_loop_speeds(path: Path) -> dict[tuple[str, str], dict[int, float]]:
    """(station, edge) → minute → mean speed (km/h) of the through lanes' vehicles."""
    sums: dict[tuple[str, str], dict[int, list[float]]] = {}
    for interval in ET.parse(path).getroot().iter("interval"):  # noqa: S314
        station, edge, lane = interval.get("id", "").split("|")
        speed = float(interval.get("speed", -1))
        n = int(interval.get("nVehContrib", 0))
        if int(lane) not in THROUGH_LANES or speed < 0 or n == 0:
            continue
        minute = int(float(interval.get("begin", 0))) // 60
        acc = sums.setdefault((station, edge), {}).setdefault(minute, [0.0, 0.0])
        acc[0] += speed * 3.6 * n
        acc[1] += n
    return {
        key: {m: total / n for m, (total, n) in series.items()}
        for key, series in sums.items()
    }


def loops_only_mape(
    speeds: dict[tuple[str, str], dict[int, float]],
    truth: dict[str, dict[datetime, float]],
    lengths: dict[str, float],
) -> float:
    """MAPE of the arterial's time from its loops alone (no cameras) per minute.

    Each link is ``length / harmonic mean of its two stations' speeds`` (at
    least its free-flow time, :func:`~central.guidance.traveltime.loop_estimate`);
    the stretches without loops (camera to the first stop line, the last
    junction to the camera, the junctions themselves) at the speed limit.
    """
    path = {"EB": ARTERIAL[:4], "WB": ARTERIAL[4:]}
    fixed = (lengths["W0_J1_0"] - CAMERA_POS + CAMERA_POS + 5 * 20) / LIMIT_MPS
    errors = []
    for name, by_minute in truth.items():
        for minute, true in by_minute.items():
            m = int((minute - T0).total_seconds() // 60)
            total = fixed
            for edge in path[name]:
                length = lengths[f"{edge}_0"]
                estimate = traveltime.loop_estimate(
                    length_m=length,
                    speeds_kmh=[
                        speeds.get((station, edge), {}).get(m, 0.0)
                        for station in ("x", "a")
                    ],
                    free_flow_s=length / LIMIT_MPS,
                )
                total += estimate.seconds if estimate else length / LIMIT_MPS
            errors.append(abs(total - true) / true)
    return statistics.fmean(errors) if errors else float("nan")


def read_cameras(path: Path) -> dict[str, dict[str, float]]:
    """Camera edge → vehicle → when it passed (its first entry)."""
    out: dict[str, dict[str, float]] = {}
    for item in ET.parse(path).getroot().iter("instantOut"):  # noqa: S314
        if item.get("state") != "enter":
            continue
        edge = item.get("id", "").split("|")[1]
        out.setdefault(edge, {}).setdefault(
            item.get("vehID", ""), float(item.get("time", 0))
        )
    return out


def _plate(rng: random.Random) -> str:
    return rng.choice(PROVINCES) + "F" + "".join(rng.choices(SERIAL, k=5))


def _misread(plate: str, rng: random.Random) -> str:
    i = rng.randrange(2, len(plate))
    wrong = rng.choice([c for c in SERIAL if c != plate[i]])
    return plate[:i] + wrong + plate[i + 1 :]


def camera_passages(
    seen: dict[str, float],
    camera: str,
    *,
    plates: dict[str, str],
    key: bytes,
    rng: random.Random,
    miss: float,
    misread: float,
) -> list[reid.Passage]:
    """What a camera reports for the vehicles that passed it (the read model)."""
    out = []
    for vehicle, t in sorted(seen.items(), key=lambda kv: kv[1]):
        if rng.random() < miss:
            continue
        text = plates.setdefault(vehicle, _plate(rng))
        if rng.random() < misread:
            text = _misread(text, rng)
        out.append(
            reid.Passage(
                camera=camera,
                plate_hash=reid.hash_plate(key, text),
                at=T0 + timedelta(seconds=t),
            )
        )
    return out


def travel_time_mape(
    cams: dict[str, dict[str, float]],
    rng: random.Random,
    *,
    miss: float,
    misread: float,
) -> tuple[
    float,
    int,
    dict[str, dict[datetime, traveltime.Estimate]],
    dict[str, dict[datetime, float]],
]:
    """MAPE of the per-minute estimates against the true per-minute means."""
    key = reid.plate_key(b"k" * 32, day="2026-12-05")
    plates: dict[str, str] = {}
    errors: list[float] = []
    series_by_link = {}
    truth_by_link: dict[str, dict[datetime, float]] = {}
    for name, ((o_edge, _), (d_edge, _)) in LINKS.items():
        origin, dest = cams.get(o_edge, {}), cams.get(d_edge, {})
        truth: dict[datetime, list[float]] = {}
        for vehicle, t_out in dest.items():
            if vehicle in origin and t_out <= END_S:
                minute = traveltime.minute_of(T0 + timedelta(seconds=t_out))
                truth.setdefault(minute, []).append(t_out - origin[vehicle])
        kw = {
            "plates": plates,
            "key": key,
            "rng": rng,
            "miss": miss,
            "misread": misread,
        }
        trips = reid.match_passages(
            camera_passages(origin, o_edge, **kw),  # type: ignore[arg-type]
            camera_passages(dest, d_edge, **kw),  # type: ignore[arg-type]
            max_s=1800,
            min_s=60,
        )
        series = traveltime.minute_series(trips)
        series_by_link[name] = series
        for minute, times in truth.items():
            if minute < T0 + timedelta(minutes=WARM_UP_MIN):
                continue
            estimate = series.get(minute)
            if estimate is None:
                continue
            true = statistics.fmean(times)
            truth_by_link.setdefault(name, {})[minute] = true
            errors.append(abs(estimate.seconds - true) / true)
    return statistics.fmean(errors), len(errors), series_by_link, truth_by_link


def detect(
    loops: dict[tuple[str, str], dict[int, dict[int, float]]],
    series: dict[str, dict[datetime, traveltime.Estimate]],
    *,
    thresholds: incident.Thresholds,
    watch: incident.WatchRules,
) -> list[tuple[str, float]]:
    """Run the detectors minute by minute; the alarms as (link, time s)."""
    alarms: list[tuple[str, float]] = []
    states = {edge: incident.LaneStates() for edge in ARTERIAL}
    for minute in range(WARM_UP_MIN, END_S // 60):
        for edge in ARTERIAL:
            up = loops.get(("x", edge), {}).get(minute, {})
            down = loops.get(("a", edge), {}).get(minute, {})
            states[edge], found = states[edge].step(
                up, down, lanes=THROUGH_LANES, thresholds=thresholds
            )
            alarms += [
                (edge, 60.0 * (minute + 1)) for _, f in found if f.kind == "raised"
            ]
    for name, by_minute in series.items():
        state = incident.TravelTimeWatch()
        for start in sorted(by_minute):
            if start < T0 + timedelta(minutes=WARM_UP_MIN):
                continue
            state, finding = state.step(by_minute[start].seconds, rules=watch)
            if finding is not None and finding.kind == "raised":
                alarms.append((name, (start - T0).total_seconds() + 60))
    return alarms


def _direction(edge: str) -> str:
    a, b = edge.split("_")
    return "EB" if a < b else "WB"


def score_alarms(
    alarms: list[tuple[str, float]], *, edge: str, start: float
) -> tuple[float | None, int]:
    """Detection time of the incident and the number of false alarms."""
    end = start + 900 + 300
    hits = [
        t - start
        for link, t in alarms
        if link in (edge, _direction(edge)) and start <= t <= end
    ]
    false = sum(
        1
        for link, t in alarms
        if not (link in (edge, _direction(edge)) and start <= t <= end)
    )
    return (min(hits) if hits else None), false


def run_seed(judge: Path, seed: int, *, miss: float, misread: float) -> SeedResult:
    """One seed: SUMO, then Baling's estimators and detectors over its outputs."""
    with tempfile.TemporaryDirectory(prefix="bench-guidance-") as tmp:
        work = Path(tmp)
        edge, started = run_sumo(judge, seed, work)
        loops = read_loops(work / "loops.xml")
        speeds = read_loop_speeds(work / "loops.xml")
        cams = read_cameras(work / "cams.xml")
    rng = random.Random(seed)
    mape, minutes, series, truth = travel_time_mape(
        cams, rng, miss=miss, misread=misread
    )
    net = judge / "scenarios" / "B" / "net_actuated.net.xml"
    loops_mape = loops_only_mape(speeds, truth, _lane_lengths(net))
    alarms = detect(
        loops, series, thresholds=incident.Thresholds(), watch=incident.WatchRules()
    )
    detect_s, false = score_alarms(alarms, edge=edge, start=started)
    return SeedResult(
        seed=seed,
        mape=mape,
        loops_mape=loops_mape,
        minutes=minutes,
        incident_edge=edge,
        incident_start=started,
        detect_s=detect_s,
        false_alarms=false,
        alarms=alarms,
    )


def record(judge: Path, seed: int, path: Path) -> None:
    """Write one seed's loop series and blockage as JSON (the tests' fixture)."""
    with tempfile.TemporaryDirectory(prefix="bench-guidance-") as tmp:
        work = Path(tmp)
        edge, started = run_sumo(judge, seed, work)
        loops = read_loops(work / "loops.xml")
    data: dict[str, Any] = {
        "seed": seed,
        "blocked_edge": edge,
        "blocked_lane": 1,
        "started_s": started,
        "lanes": list(THROUGH_LANES),
        "loops": {
            f"{station}|{e}": {str(m): lanes for m, lanes in series.items()}
            for (station, e), series in sorted(loops.items())
        },
    }
    path.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")


def parse_seeds(text: str) -> list[int]:
    """``1-10`` or ``1,2,3``."""
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def main(argv: list[str] | None = None) -> None:
    """Run the seeds and print the figures."""
    ap = argparse.ArgumentParser(prog="python -m bench.guidance")
    ap.add_argument("--seeds", default="1-10")
    ap.add_argument("--judge", type=Path, default=ROOT.parent / "shared/bench/sumo")
    ap.add_argument("--miss", type=float, default=0.10)
    ap.add_argument("--misread", type=float, default=0.05)
    ap.add_argument("--record", type=Path, help="write the first seed's loop series")
    a = ap.parse_args(argv)
    os.environ["PATH"] = (
        f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    seeds = parse_seeds(a.seeds)
    if a.record:
        record(a.judge, seeds[0], a.record)
        print(f"recorded seed {seeds[0]} in {a.record}")
        return
    started = time.perf_counter()
    results = []
    for seed in seeds:
        r = run_seed(a.judge, seed, miss=a.miss, misread=a.misread)
        results.append(r)
        found = "missed" if r.detect_s is None else f"{r.detect_s:.0f} s"
        print(
            f"seed {seed}: tt_mape={r.mape:.3f} over {r.minutes} link-minutes "
            f"(loops alone {r.loops_mape:.3f}); "
            f"blocked {r.incident_edge} lane 1 at {r.incident_start:.0f} s: "
            f"{found}; false alarms {r.false_alarms} {r.alarms}"
        )
    detected = [r.detect_s for r in results if r.detect_s is not None]
    hours = len(results) * END_S / 3600
    mape = statistics.fmean(r.mape for r in results)
    detect_s = statistics.fmean(detected) if detected else float("nan")
    false_h = sum(r.false_alarms for r in results) / hours
    loops_mape = statistics.fmean(r.loops_mape for r in results)
    print(
        f"loops alone (no cameras): tt_mape={loops_mape:.3f}; "
        f"{len(detected)}/{len(results)} blocked lanes found; miss {a.miss}, "
        f"misread {a.misread}; {time.perf_counter() - started:.0f} s"
    )
    print(
        f"tt_mape={mape:.3f} incident_detect_s={detect_s:.0f} "
        f"incident_false_per_h={false_h:.2f}"
    )


if __name__ == "__main__":
    main()
