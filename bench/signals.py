"""Signal benchmark: Baling against SUMO's own control, judged by SUMO.

In one run, on the same seeds, scenarios A (one junction) and B (an
arterial of five) of ``../shared/bench/sumo`` (the judge: its scorer turns
a JSON plan into SUMO programs and measures mean delay per vehicle,
unfinished vehicles included):

* SUMO's default static program and SUMO's actuated control (the judge's
  nets);
* Webster fixed-time and Baling's best fixed plan (``optimise``, and for B
  a common cycle with two-way green-wave offsets), both computed by
  Baling's engine from the scenario's design flows, scored by the judge;
* Baling adaptive through the full closed loop
  (:mod:`baling.closedloop`): SUMO's loops → detector cards (Modbus
  RTU) → detector nodes → MQTT → central → signed plans → cabinets →
  controllers (cabinet protocol) → SUMO's lights, in simulation time.

It also times the engine planning 500 junctions, and checks the chain's
rules: no green under 5 s, no unfinished vehicles.

    python -m bench.signals [--demand NAME] [--seeds 1-3] [--speed 50]
                            [--judge ../shared/bench/sumo] [--fast]

``--fast`` runs Baling's side as the junctions' controllers alone on SUMO
(no central, broker or cabinets; seconds instead of minutes a seed), for
quick comparisons of the controller's logic.

Every SUMO run has the junction collision check on
(``--collision.check-junctions true --collision.action warn``);
collisions are summed over the seeds. ``--demand NAME`` runs the judge's
``routes_NAME.rou.xml`` (steady demand without it). Each strategy's
distance from the no-signal floor is printed.

Last line: ``A_vs_actuated=<ratio> B_vs_actuated=<ratio> A_collisions=<n>
B_collisions=<n> B_actuated_collisions=<n>``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from baling.closedloop import START, closed_loop, start_controller
from central.signals import engine
from firmware_sim.traffic import STAGES, SumoCoSim, read_collisions

if TYPE_CHECKING:
    from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _judge(path: Path) -> tuple[ModuleType, ModuleType]:
    """The judge's own modules, loaded from where they lie (never copied).

    Its ``bench.py`` would clash with this package's name, so it is loaded
    under another one.
    """
    sys.path.insert(0, str(path))
    modules = []
    for name, file in (("sumo_judge_bench", "bench.py"), ("scenarios", "scenarios.py")):
        spec = importlib.util.spec_from_file_location(name, path / file)
        assert spec is not None  # noqa: S101
        assert spec.loader is not None  # noqa: S101
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        modules.append(module)
    return modules[0], modules[1]


def design_stages(
    scenario_dir: Path, scn: str, flows: dict[str, dict[tuple[str, str], float]]
) -> dict[str, list[list[engine.Group]]]:
    """Each junction's stage groups from the scenario's design flows and its lanes."""
    sim = SumoCoSim(scenario_dir, seed=1, work_dir=Path(tempfile.mkdtemp()))
    out = {}
    stages = STAGES[scn]
    for tls, j in sim.junctions.items():
        groups: dict[tuple[str, int], list[float]] = {}
        for lane in j.lanes:
            stage = lane.stage(stages)
            entry = groups.setdefault((lane.approach, stage), [0.0, 0.0])
            entry[1] += lane.saturation()
        for (approach, move), q in flows[tls].items():
            for (a, stage), entry in groups.items():
                if a == approach and stages[stage].get(f"{approach}{move}") == "G":
                    entry[0] += q
                    break
            else:  # a permissive movement: it rides with its approach's main stage
                key = next(k for k in groups if k[0] == approach)
                groups[key][0] += q
        per_stage: list[list[engine.Group]] = [[] for _ in stages]
        for (_a, stage), (q, s) in groups.items():
            per_stage[stage].append((q, s))
        out[tls] = per_stage
    return out


def fixed_plans(
    scn: str, stages: dict[str, list[list[engine.Group]]], positions: dict[str, float]
) -> dict[str, dict[str, Any]]:
    """Webster and Baling's best fixed plan as the judge's JSON plans."""
    webster = {t: engine.webster(s) for t, s in stages.items()}
    permissive = engine.permissive_stages(STAGES[scn])  # left turns in the gaps too
    best = {t: engine.optimise(s, permissive=permissive) for t, s in stages.items()}
    if scn == "B":  # a corridor: common cycle, splits re-fitted, two-way green wave
        # the cycle as the through traffic sets it (the wave's), without
        # the lefts' permissive share, which only lengthens it here
        cycle = max(engine.optimise(s).cycle for s in stages.values())
        best = {
            t: engine.retime(
                engine.Timing(cycle, tuple([5.0] * len(s))),
                s,
                max_step_s=cycle,
                fixed_cycle=True,
                permissive=permissive,
            )
            for t, s in stages.items()
        }
        cycle_w = max(t.cycle for t in webster.values())
        webster = {
            t: engine.webster(s, engine.Limits(min_cycle=cycle_w, max_cycle=cycle_w))
            for t, s in stages.items()
        }
        order = sorted(best, key=lambda t: positions[t])
        offsets = engine.green_wave(
            [positions[t] for t in order],
            [best[t].greens[0] for t in order],
            cycle,
            speed_mps=13.89,
            peak_share=0.6,
        )
        best = {
            t: engine.Timing(best[t].cycle, best[t].greens, o)
            for t, o in zip(order, offsets, strict=True)
        }

    def plan(timings: dict[str, engine.Timing]) -> dict[str, Any]:
        return {
            "scenario": scn,
            "yellow": 3,
            "all_red": 1,
            "intersections": {
                t: {"cycle": x.cycle, "offset": x.offset, "greens": list(x.greens)}
                for t, x in timings.items()
            },
        }

    return {"webster": plan(webster), "fixed": plan(best)}


# Baling's own time-varying demands: each flow's rate × these, per quarter hour
# ("main": the main street or arterial, "peak": its peak direction, W/EB)
VARIANTS: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "step": {"main": (1.0, 1.0, 1.25, 1.25), "side": (1.0, 1.0, 0.75, 0.75)},
    "ramp": {"main": (0.7, 0.9, 1.1, 1.3), "side": (0.7, 0.9, 1.1, 1.3)},
    "swap": {"peak": (1.25, 1.25, 0.75, 0.75), "counter": (0.75, 0.75, 1.25, 1.25)},
    "closure": {},  # steady demand, one through lane closed 20-35 min
}
# a through lane of the main (peak) direction's entry: no movement depends on
# it alone (closing J2_J3_1 left N2's left turn, whose only lane it is, no route)
CLOSED = {"A": ("W_in", "W_in_1"), "B": ("W0_J1", "W0_J1_1")}


def _kind(flow_id: str) -> set[str]:
    """Which multipliers apply to a flow, by its id (the judge's naming)."""
    if flow_id.startswith(("W_", "EB")):
        return {"main", "peak"}
    if flow_id.startswith(("E_", "WB")):
        return {"main", "counter"}
    return {"side"}


def variant_routes(scenario_dir: Path, scn: str, name: str, out: Path) -> Path:
    """A time-varying demand made from the scenario's steady one.

    Each ``<flow>`` is cut into quarter hours with its rate scaled per
    :data:`VARIANTS`; ``closure`` adds a rerouter closing one through lane
    for 15 minutes (``routes_closure.add.xml`` beside the routes).
    """
    import xml.etree.ElementTree as ET  # noqa: PLC0415

    tree = ET.parse(scenario_dir / "routes.rou.xml")  # noqa: S314 - the judge's file
    root = tree.getroot()
    factors = VARIANTS[name]
    parts = []
    for flow in list(root.iter("flow")):
        kinds = _kind(flow.get("id", ""))
        mult = next(
            (
                factors[k]
                for k in ("peak", "counter", "main", "side")
                if k in kinds and k in factors
            ),
            (1.0, 1.0, 1.0, 1.0),
        )
        rate = float(flow.get("period", "exp(0)")[4:-1])
        root.remove(flow)
        for q, m in enumerate(mult):
            part = ET.Element("flow", dict(flow.attrib))
            part.set("id", f"{flow.get('id')}_q{q}")
            part.set("begin", str(q * 900))
            part.set("end", str((q + 1) * 900))
            part.set("period", f"exp({rate * m:.6f})")
            parts.append((q, part))
    # SUMO reads a route file in departure order: a flow that begins before
    # one already read is dropped (unsorted, only each flow's last quarter
    # but the first ran)
    root.extend(part for _q, part in sorted(parts, key=lambda x: x[0]))
    routes = out / f"routes_{name}.rou.xml"
    tree.write(routes, encoding="unicode")
    if name == "closure":
        edge, lane = CLOSED[scn]
        routes.with_name(f"routes_{name}.add.xml").write_text(
            f'<additional>\n  <rerouter id="closure" edges="{edge}">\n'
            f'    <interval begin="1200" end="2100">'
            f'<closingLaneReroute id="{lane}"/></interval>\n'
            "  </rerouter>\n</additional>\n",
            encoding="utf-8",
        )
    return routes


def run_variant(
    judge: ModuleType,
    scn: str,
    net: str,
    seed: int,
    *,
    routes: Path,
    additional: str | None,
    extra: list[str],
) -> dict[str, Any]:
    """One SUMO run as the judge's ``run_sumo`` makes it, on a demand file of ours."""
    import subprocess  # noqa: PLC0415

    work = Path(tempfile.mkdtemp(prefix=f"variant_{scn}_"))
    trip = work / "tripinfo.xml"
    beside = routes.with_name(routes.name.removesuffix(".rou.xml") + ".add.xml")
    adds = [a for a in (additional, str(beside) if beside.exists() else None) if a]
    args = [
        "sumo", "-n", f"{judge.SCN_DIR}/{scn}/net_{net}.net.xml",
        "-r", str(routes), "--seed", str(seed), "--begin", "0",
        "--end", str(judge.END), "--time-to-teleport", "-1",
        "--tripinfo-output", str(trip),
        "--tripinfo-output.write-unfinished", "true",
        "--tripinfo-output.write-undeparted", "true",
        "--no-step-log", "true", "--no-warnings", "true",
        "--duration-log.disable", "true",
        *(["--collision.action", "none"] if net == "nosignal" else []),
        *(["-a", ",".join(adds)] if adds else []),
        *extra,
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    m = dict(judge.parse_tripinfo(str(trip)))
    m["seed"], m["wall_s"] = seed, time.perf_counter() - started
    return m


def judged(
    judge: ModuleType,
    scn: str,
    net: str,
    seeds: list[int],
    *,
    additional: str | None = None,
    demand: str | None = None,
) -> tuple[float, int]:
    """(mean delay, collisions summed over seeds) of the judge's runs.

    Runs one seed at a time through the judge's ``run_sumo`` with SUMO's
    junction collision check (the no-signal floor without it: vehicles
    pass through each other there).
    """
    runs, collisions = [], 0
    for seed in seeds:
        out = Path(tempfile.mkdtemp()) / "collisions.xml"
        extra = (
            []
            if net == "nosignal"
            else [
                "--collision.check-junctions", "true",
                "--collision.action", "warn",
                "--collision-output", str(out),
            ]
        )  # fmt: skip
        if demand and Path(demand).is_absolute():
            runs.append(
                run_variant(
                    judge,
                    scn,
                    net,
                    seed,
                    routes=Path(demand),
                    additional=additional,
                    extra=extra,
                )
            )
        else:
            runs.append(
                judge.run_sumo(scn, net, seed, additional, extra, demand=demand)
            )
        collisions += len(read_collisions(out))
    return float(judge.aggregate(runs)["mean_delay"]), collisions


def score_plan(
    judge: ModuleType, plan: dict[str, Any], seeds: list[int], demand: str | None
) -> tuple[float, int]:
    """The judge's score of a JSON plan: (mean delay, collisions)."""
    add = Path(tempfile.mkdtemp()) / "plan.add.xml"
    judge.plan_to_additional(plan, str(add))
    return judged(
        judge, plan["scenario"], "static", seeds, additional=str(add), demand=demand
    )


def adaptive(
    judge: ModuleType,
    scenario_dir: Path,
    scn: str,
    seeds: list[int],
    speed: float,
    *,
    demand: str | None,
) -> dict[str, Any]:
    """Baling adaptive through the whole chain; scored on the same tripinfo terms."""
    runs, min_green, collisions = [], 1e9, 0
    for seed in seeds:
        work = Path(tempfile.mkdtemp(prefix=f"signals-{scn}-{seed}-"))
        started = time.monotonic()
        with closed_loop(
            scenario_dir, scn, seed=seed, work=work, demand=demand
        ) as loop:
            loop.sim.run(loop.clock, speed=speed)
            trip = loop.sim.tripinfo
            sim = loop.sim
        crashes = sim.collisions()
        collisions += len(crashes)
        from sqlmodel import Session, create_engine, select  # noqa: PLC0415

        from central.signals.models import PlanRow  # noqa: PLC0415

        db = create_engine(f"sqlite:///{work / 'central.sqlite3'}")
        with Session(db) as session:
            for row in session.exec(select(PlanRow)).all():
                min_green = min(min_green, *row.body["greens"])
        db.dispose()
        m = dict(judge.parse_tripinfo(str(trip)))
        m["seed"], m["wall_s"] = seed, time.monotonic() - started
        runs.append(m)
        print(
            f"  {scn} adaptive seed {seed}: {m['mean_delay']:.2f} s/veh, "
            f"unfinished {m['unfinished']}, collisions {len(crashes)}, "
            f"{m['wall_s']:.0f} s wall",
            flush=True,
        )
        for c in crashes:
            print(
                f"    collision {c.get('time')} s on {c.get('lane')}: "
                f"{c.get('collider')} into {c.get('victim')}"
            )
    out = dict(judge.aggregate(runs))
    out["min_green"] = min_green
    out["collisions"] = collisions
    return out


def controllers_only(
    judge: ModuleType,
    scenario_dir: Path,
    scn: str,
    seeds: list[int],
    *,
    demand: str | None,
    stages: dict[str, list[list[engine.Group]]],
) -> dict[str, Any]:
    """SUMO and the junctions' controllers alone, as fast as they go (``--fast``).

    No central, broker or cabinets: each controller runs vehicle-actuated on
    its own loops (and box detectors) under the maxima of Baling's best fixed
    plan for the design flows, as it would before central re-times them.
    For quick comparisons of the controller's logic; the benchmark's figure
    is the whole chain's.
    """
    from edge.clock import ManualClock  # noqa: PLC0415
    from signal_controller.junction import Plan  # noqa: PLC0415

    runs, collisions = [], 0
    for seed in seeds:
        work = Path(tempfile.mkdtemp(prefix=f"signals-fast-{scn}-{seed}-"))
        clock = ManualClock(START)
        sim = SumoCoSim(scenario_dir, seed=seed, work_dir=work / "sumo", demand=demand)
        started = time.monotonic()
        try:
            for tls, j in sim.junctions.items():
                c = start_controller(j, STAGES[scn], clock, work / f"{tls}.json")
                best = engine.optimise(stages[tls])
                c.pending = Plan(
                    junction=tls,
                    version="fast",
                    greens=best.greens,
                    cycle=best.cycle,
                    actuated=True,
                )
                j.controller = c
            sim.start()
            while not sim.done():
                sim.step(clock)
        finally:
            sim.stop()
            for j in sim.junctions.values():
                if j.controller is not None:
                    j.controller.stop()
        crashes = sim.collisions()
        collisions += len(crashes)
        m = dict(judge.parse_tripinfo(str(sim.tripinfo)))
        m["seed"], m["wall_s"] = seed, time.monotonic() - started
        runs.append(m)
        print(
            f"  {scn} controllers alone, seed {seed}: {m['mean_delay']:.2f} s/veh, "
            f"unfinished {m['unfinished']}, collisions {len(crashes)}",
            flush=True,
        )
    out = dict(judge.aggregate(runs))
    out["min_green"] = 5.0  # the junction's minimum: the plan is not central's
    out["collisions"] = collisions
    return out


def planning_speed(stages: list[list[engine.Group]]) -> float:
    """Seconds to plan 500 junctions (optimise), median of 3."""
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        for i in range(500):
            scale = 0.6 + (i % 9) / 10
            engine.optimise([[(q * scale, s) for q, s in stage] for stage in stages])
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    """Run every strategy on both scenarios and print the comparison."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", default="1-3")
    p.add_argument("--speed", type=float, default=50.0, help="closed loop × real time")
    p.add_argument("--scenarios", default="A,B")
    p.add_argument(
        "--demand",
        default=None,
        help=f"the judge's routes_NAME.rou.xml, or one of {sorted(VARIANTS)}",
    )
    p.add_argument(
        "--judge", type=Path, default=ROOT.parent / "shared" / "bench" / "sumo"
    )
    p.add_argument(
        "--fast",
        action="store_true",
        help="adaptive: the controllers alone on SUMO (no central, MQTT, cabinets)",
    )
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    os.environ["PATH"] = (
        f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    judge, scenarios = _judge(args.judge.resolve())
    results: dict[str, dict[str, float]] = {}
    for scn in args.scenarios.split(","):
        scenario_dir = args.judge / "scenarios" / scn
        demand = args.demand
        routes = scenario_dir / f"routes_{demand}.rou.xml"
        if demand in VARIANTS and not routes.exists():  # one of Baling's own
            out = Path(tempfile.mkdtemp(prefix=f"demand_{scn}_"))
            demand = str(variant_routes(scenario_dir, scn, args.demand, out))
        elif demand and not routes.exists():
            p.error(
                f"expected {routes} or one of {sorted(VARIANTS)} for --demand, "
                f"got {demand}"
            )
        stages = design_stages(scenario_dir, scn, scenarios.movement_flows(scn))
        import sumolib  # noqa: PLC0415

        net = sumolib.net.readNet(str(scenario_dir / "net_static.net.xml"))
        positions = {t: float(net.getNode(t).getCoord()[0]) for t in stages}
        plans = fixed_plans(scn, stages, positions)
        row: dict[str, float] = {}
        for name, net_name in (
            ("floor", "nosignal"),
            ("default", "static"),
            ("actuated", "actuated"),
        ):
            row[name], row[f"{name}_collisions"] = judged(
                judge, scn, net_name, seeds, demand=demand
            )
        for name in ("webster", "fixed"):
            row[name], row[f"{name}_collisions"] = score_plan(
                judge, plans[name], seeds, demand
            )
        result = (
            controllers_only(
                judge, scenario_dir, scn, seeds, demand=demand, stages=stages
            )
            if args.fast
            else adaptive(judge, scenario_dir, scn, seeds, args.speed, demand=demand)
        )
        row["adaptive"] = result["mean_delay"]
        row["adaptive_collisions"] = result["collisions"]
        row["unfinished"] = result["unfinished"]
        row["min_green"] = result["min_green"]
        results[scn] = row
        print(
            f"{scn} ({args.demand or 'steady'}): floor {row['floor']:.1f} s/veh, seeds "
            f"{seeds}; per strategy: delay, × floor, collisions",
            flush=True,
        )
        for name in ("default", "webster", "actuated", "fixed", "adaptive"):
            print(
                f"   {name:9s} {row[name]:6.1f} s/veh  "
                f"{row[name] / row['floor']:5.2f}× floor "
                f"(+{row[name] - row['floor']:.1f} s)  "
                f"collisions {row[name + '_collisions']:.0f}"
            )
        print(
            f"   adaptive/actuated {row['adaptive'] / row['actuated']:.3f}; "
            f"unfinished {row['unfinished']:.1f}, "
            f"shortest green {row['min_green']:.0f} s",
            flush=True,
        )
        print(f"   fixed plans: {json.dumps(plans['fixed']['intersections'])}")
    any_stages = design_stages(
        args.judge / "scenarios" / "A", "A", scenarios.movement_flows("A")
    )["C"]
    took = planning_speed(any_stages)
    print(f"engine: 500 junctions planned in {took:.2f} s (median of 3)")
    last = [
        f"{scn}_vs_actuated={r['adaptive'] / r['actuated']:.3f}"
        for scn, r in results.items()
    ]
    last += [
        f"{scn}_collisions={r['adaptive_collisions']:.0f}" for scn, r in results.items()
    ]
    if "B" in results:
        last.append(f"B_actuated_collisions={results['B']['actuated_collisions']:.0f}")
    print(" ".join(last))


if __name__ == "__main__":
    main()
