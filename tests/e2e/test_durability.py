"""Nothing is lost: 10,000 events through broker restarts and a kill -9 of the node."""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session
from support.waiting import wait_until
from test_faults import start_node  # the fault tests' own helper

from central.fleet import registry
from edge import SystemClock

if TYPE_CHECKING:
    from pathlib import Path

    from baling.broker import Mosquitto
    from central.main import Central

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
TOTAL = 10_000


def count(central: Central) -> int:
    with central.services.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT COUNT(*) FROM event")).scalar_one())


def test_ten_thousand_events_survive_restarts_and_kill_9(
    make_central: Any, sqlite_url: str, broker: Mosquitto, tmp_path: Path
) -> None:
    central: Central = make_central(sqlite_url)
    with Session(central.services.engine) as s:
        registry.register(s, device_id="sim-e2e", kind="sim", now=SystemClock().now())
    conf = tmp_path / "node.toml"
    conf.write_text(
        f'device_id = "sim-e2e"\nkind = "sim"\ndata_dir = "{tmp_path / "node"}"\n'
        f'broker_port = {broker.port}\nlog_level = "WARNING"\n',
        encoding="utf-8",
    )
    node = start_node(conf, TOTAL)
    try:
        wait_until(lambda: count(central) >= 2000, 60, "2,000 events")
        broker.restart()
        wait_until(lambda: count(central) >= 4000, 60, "4,000 events")
        node.send_signal(signal.SIGKILL)
        node.wait()
        node = start_node(conf, TOTAL)
        wait_until(lambda: count(central) >= 7000, 60, "7,000 events")
        broker.restart()
        wait_until(lambda: count(central) >= TOTAL, 120, f"{TOTAL} events")
        time.sleep(1.0)  # anything still in flight would show up as a duplicate now
    finally:
        node.send_signal(signal.SIGTERM)
        node.wait(timeout=15)
    with central.services.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, body FROM event WHERE device = 'sim-e2e' ORDER BY seq")
        ).all()
    import json  # noqa: PLC0415

    seqs = [
        json.loads(body)["seq"] if isinstance(body, str) else body["seq"]
        for _, body in rows
    ]
    assert len(rows) == TOTAL, f"expected {TOTAL} events, got {len(rows)}"
    assert len({r[0] for r in rows}) == TOTAL, "an event id was stored twice"
    assert seqs == list(range(1, TOTAL + 1)), (
        "events are missing, doubled or out of order"
    )
    ids = [r[0] for r in rows]
    assert ids == sorted(ids), "UUIDv7 ids are not in per-node order"
