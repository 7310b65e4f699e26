"""OTA benchmark: a county fleet updated in waves, a bad release, a delta.

One Mosquitto, central in this process (SQLite, HTTP on a free port, the
rollout tick every ``--tick`` seconds) and ``--nodes`` virtual nodes
(:mod:`firmware_sim.otafleet`: each its own MQTT connection, the real
update loop, real TUF fetches over HTTP, real A/B slots on disk; health
settles in 2 s, a trial's deadline is 5 s). In one run:

(a) a good release (1.1.0) rolled out from the factory install in waves
    (canary 2, growth ×3): seconds until every node has committed it;
(c) the next release (1.2.0), where one module changed: the bytes each node
    downloaded (a signed delta from 1.1.0) against the full release;
(b) a release that fails its health check on every node (a fault drill,
    1.3.0): the share of the fleet that installed it before the rollout
    stopped itself — and every one of those rolled back.

    python -m bench.ota [--nodes 200] [--tick 2]

Last line: ``ota_bad_touched_pct=<pct> ota_delta_ratio=<0..1> ota_good_s=<s>``.
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn
from sqlmodel import Session

from baling.broker import Mosquitto, free_port
from central.fleet import registry
from central.main import Central
from central.ota.models import RolloutRow
from central.ota.release import build, publish
from central.ota.repository import Repository
from central.ota.rollout import Plan
from central.settings import CentralSettings
from edge.ota.client import pin_roots
from firmware_sim.otafleet import FleetLog, FleetRunner, node_settings

if TYPE_CHECKING:
    from edge.settings import NodeSettings

ROOT = Path(__file__).resolve().parents[1]


def _release(
    central: Central,
    tmp: Path,
    version: str,
    *,
    source: Path = ROOT,
    drill: bool = False,
) -> tuple[str, int]:
    archive = build(
        "sim", version, min_from="0", out=tmp / "dist", source=source, drill=drill
    )
    name = publish(
        archive,
        repo_dir=central.settings.data_dir / "ota" / "image",
        offline=tmp / "offline",
        online=central.settings.data_dir / "ota-online-keys",
        now=datetime.now(UTC),
    )
    return name, archive.stat().st_size


def _one_module_changed(tmp: Path) -> Path:
    source = tmp / "src-1.2.0"
    for package in ("edge", "baling", "firmware_sim"):
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("*.pyc")
        )
    module = source / "firmware_sim" / "eventnode.py"
    module.write_text(module.read_text() + "\n# 1.2.0: one fix\n", encoding="utf-8")
    return source


def _rollout(central: Central, name: str, version: str) -> int:
    assert central.ota is not None  # noqa: S101
    with Session(central.services.engine) as session:
        row = central.ota.start(
            session,
            release=name,
            version=version,
            kind="sim",
            by="bench",
            plan=Plan(canary=2, growth=3, min_sample=2, node_timeout_s=120),
        )
        return int(row.id or 0)


def _wait(central: Central, rid: int, until: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(central.services.engine) as session:
            row = session.get(RolloutRow, rid)
            if row is not None and row.state in until:
                return row.state
        time.sleep(0.2)
    return "timed out"


def _central(tmp: Path, tick: float) -> tuple[Central, Mosquitto, uvicorn.Server]:
    broker = Mosquitto(data_dir=tmp / "broker")
    broker.start()
    http = free_port()
    central = Central(
        CentralSettings(
            database_url=f"sqlite:///{tmp / 'central.sqlite3'}",
            jwt_secret="b" * 40,
            data_dir=tmp / "central",
            broker_port=broker.port,
            http_port=http,
            offline_after_s=3600,
            ota_tick_s=tick,
        )
    )
    central.start()
    server = uvicorn.Server(uvicorn.Config(central.app, port=http, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return central, broker, server


def _nodes(central: Central, tmp: Path, n: int) -> list[NodeSettings]:
    """Register ``n`` nodes and give each its pinned roots."""
    assert central.ota is not None  # noqa: S101
    image_root = Repository(central.ota.image_dir).root_bytes()
    url = f"http://127.0.0.1:{central.settings.http_port}/ota"
    fleet: list[NodeSettings] = []
    with Session(central.services.engine) as session:
        for i in range(n):
            device = f"sim-{i:04d}"
            registry.register(
                session, device_id=device, kind="sim", now=datetime.now(UTC)
            )
            s = node_settings(device, "sim", tmp / "nodes", url)
            pin_roots(s.data_dir, image_root, central.ota.director(device).root_bytes())
            fleet.append(s)
    return fleet


def _installed(log: FleetLog, release: str) -> set[str]:
    return {
        d
        for d, b in log.events
        if b.get("release") == release and b.get("state") == "installed"
    }


def _failures(log: FleetLog, release: str) -> str:
    reasons: dict[str, int] = {}
    for _device, body in log.events:
        if body.get("release") == release and body.get("state") in (
            "failed",
            "rolled_back",
        ):
            key = str(body.get("reason", ""))[:80]
            reasons[key] = reasons.get(key, 0) + 1
    return "; ".join(f"{n}× {r}" for r, n in reasons.items()) or "none"


def main() -> None:
    """Run the three measurements and print them."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nodes", type=int, default=200)
    p.add_argument("--tick", type=float, default=2.0)
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # a socket or two per node
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    tmp = Path(tempfile.mkdtemp(prefix="bench-ota-"))
    central, broker, server = _central(tmp, args.tick)
    good, full_good = _release(central, tmp, "1.1.0")
    fixed, full_fixed = _release(central, tmp, "1.2.0", source=_one_module_changed(tmp))
    drill, _ = _release(central, tmp, "1.3.0", drill=True)
    fleet = _nodes(central, tmp, args.nodes)
    log = FleetLog()
    runner = FleetRunner(fleet, host="127.0.0.1", port=broker.port, log=log)
    runner.start()
    while not runner.connected.is_set():
        time.sleep(0.1)
    print(f"{args.nodes} virtual nodes connected; rollout tick {args.tick} s")

    # (a) a good release, from the factory install, in waves
    t0 = time.monotonic()
    rid = _rollout(central, good, "1.1.0")
    state = _wait(central, rid, {"done", "paused", "cancelled"}, timeout=600)
    good_s = time.monotonic() - t0
    committed = sum(s == "committed" for s in log.states(good).values())
    print(
        f"(a) good release {good}: {state} in {good_s:.1f} s; "
        f"{committed}/{args.nodes} committed; failures: {_failures(log, good)}"
    )

    # (c) one module changed: deltas from 1.1.0
    rid = _rollout(central, fixed, "1.2.0")
    state = _wait(central, rid, {"done", "paused", "cancelled"}, timeout=600)
    sent = log.bytes_for(fixed) or [full_fixed]
    first = log.bytes_for(good) or [0]
    ratio = statistics.median(sent) / full_fixed
    print(
        f"(c) {fixed}: {state}; median {statistics.median(sent):.0f} bytes per node "
        f"(delta and metadata) vs {full_fixed} full; 1.1.0 from the factory "
        f"took {statistics.median(first):.0f} of {full_good}; "
        f"failures: {_failures(log, fixed)}"
    )

    # (b) a release that fails its health check everywhere
    rid = _rollout(central, drill, "1.3.0")
    state = _wait(central, rid, {"done", "paused", "cancelled"}, timeout=600)
    time.sleep(8)  # stragglers past their deadline report back
    installed = _installed(log, drill)
    rolled_back = sum(log.states(drill).get(d) == "rolled_back" for d in installed)
    touched_pct = 100.0 * len(installed) / args.nodes
    print(
        f"(b) drill release {drill}: rollout {state}; {len(installed)} nodes "
        f"installed it ({touched_pct:.1f} %), {rolled_back} rolled back"
    )
    runner.stop()
    server.should_exit = True
    central.stop()
    broker.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"ota_bad_touched_pct={touched_pct:.1f} ota_delta_ratio={ratio:.3f} "
        f"ota_good_s={good_s:.1f}"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
