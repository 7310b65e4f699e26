"""Enrolment benchmark: 100 simulated nodes enrol one after another.

On a secure single-machine site (central, mutual-TLS Mosquitto, HTTP), each
node gets a one-time code, runs the enrolment (key made locally, CSR,
certificate chain, settings written), starts from the written settings and
connects with its certificate. The time from the start of ``enroll`` to
central seeing the node online is measured per node.

    python -m bench.enroll [--nodes N]

Last line: ``enroll_p95_s=<seconds>``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session

from baling.securesite import SecureSite
from central.fleet import enrolment, registry
from edge import NodeSettings, build_agent, load_settings
from firmware_sim.eventnode import SimAgent
from provisioning.enroll import enroll


def _online(site: SecureSite, device_id: str) -> bool:
    with Session(site.central.services.engine) as session:
        return registry.get(session, device_id).online


def main() -> None:
    """Enrol the nodes and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    args = parser.parse_args()
    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        site = SecureSite(Path(tmp))
        site.start()
        try:
            for n in range(args.nodes):
                with Session(site.central.services.engine) as session:
                    code, _row = enrolment.create_code(
                        session,
                        kind="sim",
                        site="rongjiawan",
                        created_by="bench",
                        now=datetime.now(UTC),
                    )
                started = time.perf_counter()
                done = enroll(
                    site.url, code, Path(tmp) / f"node-{n}", say=lambda _m: None
                )
                agent = build_agent(SimAgent, load_settings(NodeSettings, done.config))
                stop = threading.Event()
                thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
                thread.start()
                while not _online(site, done.device_id):
                    time.sleep(0.005)
                times.append(time.perf_counter() - started)
                stop.set()
                thread.join(10)
        finally:
            site.stop()
    times.sort()
    p95 = times[max(0, round(0.95 * len(times)) - 1)]
    print(
        f"nodes={len(times)} median_s={statistics.median(times):.3f} "
        f"p95_s={p95:.3f} max_s={times[-1]:.3f}"
    )
    print(f"enroll_p95_s={p95:.3f}")


if __name__ == "__main__":
    main()
