import subprocess
import sys
from pathlib import Path

import pytest

from edge import Entry, Outbox, OutboxFullError


def ev(n: int, size: int = 10, **kw: object) -> Entry:
    return Entry(topic=f"bl/v1/a/event/t{n}", payload=bytes([n % 256]) * size, **kw)  # type: ignore[arg-type]


def test_fifo_with_priorities(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    box.put([ev(1), ev(2)])
    box.put([ev(3, priority=9)])
    assert [s.topic[-2:] for s in box.peek(10)] == ["t3", "t1", "t2"]
    first = box.peek(1)[0]
    assert [s.topic[-2:] for s in box.peek(10, skip={first.seq})] == ["t1", "t2"]


def test_ack_deletes_and_survives_reopen(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    box.put([ev(n) for n in range(5)])
    box.ack([s.seq for s in box.peek(2)])
    box.close()
    again = Outbox(tmp_path / "o.sqlite3")
    assert again.depth == 3
    assert again.bytes == 30
    assert [s.topic[-2:] for s in again.peek(10)] == ["t2", "t3", "t4"]


def test_survives_kill_9_of_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from edge import Entry, Outbox\n"
        f"box = Outbox(Path({str(path)!r}))\n"
        "for n in range(50):\n"
        "    box.put([Entry(topic='bl/v1/a/event/t', payload=str(n).encode())])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == -9
    box = Outbox(path)
    assert [int(s.payload) for s in box.peek(100)] == list(range(50))


def test_full_budget_drops_oldest_telemetry_first(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", max_bytes=100)
    box.put([ev(n, kind="telemetry") for n in range(5)])  # 50 bytes telemetry
    box.put([ev(10 + n) for n in range(4)])  # 40 bytes events
    box.put([ev(20, size=30)])  # needs 20 bytes freed
    kinds = [s.topic for s in box.peek(100)]
    assert "bl/v1/a/event/t0" not in kinds
    assert "bl/v1/a/event/t1" not in kinds
    assert box.dropped_telemetry == 2
    assert box.bytes <= 100


def test_events_are_never_dropped_silently(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", max_bytes=100)
    box.put([ev(n) for n in range(10)])
    with pytest.raises(OutboxFullError, match="expected room for 10 bytes"):
        box.put([ev(99)])
    assert box.depth == 10
    # New telemetry that cannot fit is dropped and counted, not raised.
    assert box.put([ev(50, kind="telemetry")]) == 0
    assert box.dropped_telemetry == 1


def test_cursor_is_saved_with_the_entries(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", max_bytes=100)
    box.put([ev(1)], cursor=("seq", "1"))
    with pytest.raises(OutboxFullError):
        box.put([ev(2, size=200)], cursor=("seq", "2"))
    assert box.cursor("seq") == "1"
    assert box.cursor("other") is None


def test_refused_entries_go_to_dead_letters(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    box.put([ev(1), ev(2)])
    first = box.peek(1)[0]
    box.bury(first.seq, "Not authorized")
    assert box.depth == 1
    assert box.dead() == [(first.seq, first.topic, "Not authorized")]


@pytest.mark.parametrize(
    ("kw", "words"), [({"kind": "log"}, "kind"), ({"qos": 2}, "qos")]
)
def test_entry_validates_itself(kw: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Entry(topic="t", payload=b"", **kw)  # type: ignore[arg-type]
