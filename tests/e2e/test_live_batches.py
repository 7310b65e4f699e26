"""The live stream's batches: officer positions gathered for the consoles.

A console opens ``/api/v1/stream?batch=true`` and gets officer positions,
which come by the hundred a second, as a few ``officers`` events carrying
the latest of each officer; anything else (an alarm) comes at once, after
the positions held before it. The permission matrix holds inside a batch.
Central serves the real stream over HTTP; no browser is needed here (the
police console's use of it is in test_maps.py and bench.console).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx2
from sqlmodel import Session
from support.api import login
from support.central import central_services

from central.app import create_app
from central.fleet import registry
from central.operators.auth import create_operator

if TYPE_CHECKING:
    from pathlib import Path

PASSWORD = "batches of positions 18"


def _ticket(base: str, user: str) -> str:
    answer = httpx2.post(
        f"{base}/api/v1/stream/ticket", headers=login(base, user, PASSWORD), timeout=20
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["ticket"])


def _listen(url: str, into: list[dict[str, Any]]) -> threading.Thread:
    def read() -> None:
        with httpx2.stream("GET", url, timeout=20) as events:
            for line in events.iter_lines():
                if line.startswith("data: "):
                    into.append(json.loads(line.removeprefix("data: ")))
                    if into[-1].get("type") == "alarm":
                        return

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_positions_come_gathered_and_an_alarm_at_once(
    tmp_path: Path, serve_app: Any
) -> None:
    services = central_services(f"sqlite:///{tmp_path / 'c.sqlite3'}", tmp_path)
    now = datetime.now(UTC)
    with Session(services.engine) as s:
        create_operator(s, username="cmd", password=PASSWORD, role="police", now=now)
        for device in ("hh-1", "hh-2"):
            registry.register(s, device_id=device, kind="handheld", now=now)
    base = serve_app(create_app(services))
    gathered: list[dict[str, Any]] = []
    single: list[dict[str, Any]] = []
    threads = [
        _listen(
            f"{base}/api/v1/stream?batch=true&ticket={_ticket(base, 'cmd')}", gathered
        ),
        _listen(f"{base}/api/v1/stream?ticket={_ticket(base, 'cmd')}", single),
    ]
    deadline = time.monotonic() + 10
    while services.broadcaster.subscribers < 2 and time.monotonic() < deadline:
        time.sleep(0.05)

    # 200 positions of two officers in well under the batch window, then a
    # battery report without a fix, then an alarm.
    for i in range(200):
        services.broadcaster.publish(
            {"type": "officer", "device": f"hh-{i % 2 + 1}", "lat": 29.1 + i * 1e-5}
        )
    services.broadcaster.publish({"type": "officer", "device": "hh-1", "battery": 41})
    services.broadcaster.publish({"type": "alarm", "id": 1, "device": "hh-2"})
    for thread in threads:
        thread.join(15)
    services.engine.dispose()

    # Without batch=true, every position is its own event, as before.
    assert len(single) == 202
    assert single[-1]["type"] == "alarm"
    # With it: a few events, the alarm last, and each officer's latest
    # position (the battery report kept the fix before it).
    assert gathered[-1] == {"type": "alarm", "id": 1, "device": "hh-2"}
    batches = gathered[:-1]
    assert batches
    assert len(batches) <= 3
    assert all(b["type"] == "officers" for b in batches)
    last = {item["device"]: item for b in batches for item in b["items"]}
    assert last["hh-1"]["lat"] == 29.1 + 198 * 1e-5
    assert last["hh-1"]["battery"] == 41
    assert last["hh-2"]["lat"] == 29.1 + 199 * 1e-5
