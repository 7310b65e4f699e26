"""The virtual handheld fleet on a real broker: positions out, alerts timed in."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.protocol import decode, encode, make, topics
from firmware_sim.fleet import Arrivals, Virtual, round_trips, run_handhelds

if TYPE_CHECKING:
    from baling.broker import Mosquitto


def test_fleet_reports_positions_and_times_alerts(broker: Mosquitto) -> None:
    fleet = [Virtual(f"hh-{i}", 29.145 + i * 1e-3, 113.118) for i in range(3)]
    arrivals = Arrivals()
    seen: list[str] = []
    watcher = paho.Client(CallbackAPIVersion.VERSION2, client_id="watch")
    watcher.on_message = lambda _c, _u, m: seen.append(decode(m.payload).device)
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe(topics.all_events(), qos=1)
    watcher.loop_start()

    async def scenario() -> list[float]:
        stop, connected = asyncio.Event(), asyncio.Event()
        runner = asyncio.create_task(
            run_handhelds(
                fleet,
                host="127.0.0.1",
                port=broker.port,
                report_s=0.2,
                arrivals=arrivals,
                stop=stop,
                connected=connected,
                batch=2,
            )
        )
        await asyncio.wait_for(connected.wait(), 10)
        raised = datetime.now(UTC) - timedelta(milliseconds=30)
        alert = {"args": {"alert_id": "sos:x", "raised_at": raised.isoformat()}}
        payload = encode(make("hh-1", "alert", alert, now=datetime.now(UTC)))
        pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="central-test")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        for _ in range(2):  # the repeat is counted, not timed again
            pub.publish(
                topics.command("hh-1", "alert"), payload, qos=1
            ).wait_for_publish(5)
        pub.publish(
            topics.command("hh-2", "alert"), b"not json", qos=1
        ).wait_for_publish(5)
        rtt = await round_trips("127.0.0.1", broker.port, count=3, gap_s=0.01)
        for _ in range(100):
            if arrivals.repeats:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(runner, 10)
        pub.loop_stop()
        return rtt

    rtt = asyncio.run(scenario())
    watcher.loop_stop()
    assert len(rtt) == 3
    assert all(0 < r < 5000 for r in rtt)
    assert list(arrivals.latencies_ms) == [("sos:x", "hh-1")]
    assert arrivals.latencies_ms[("sos:x", "hh-1")] >= 30
    assert arrivals.repeats == 1
    assert {"hh-0", "hh-1", "hh-2"} <= set(seen)
