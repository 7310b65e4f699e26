"""A/B slots: install, trial, commit, roll back — and survive kill -9 anywhere."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.ota.slots import SlotError, Slots

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def bundle(tmp_path: Path, version: str, *, junk: bool = False) -> Path:
    path = tmp_path / f"release-{version}.tar"
    with tarfile.open(path, "w") as tar:
        files = {"app/main.py": f"VERSION = {version!r}\n".encode()}
        if not junk:
            files["release.json"] = json.dumps({"version": version}).encode()
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_install_trial_commit_and_rollback(tmp_path: Path) -> None:
    slots = Slots(tmp_path / "node")
    first = slots.install(bundle(tmp_path, "1.0.0"))
    slots.switch(first, deadline=NOW + timedelta(minutes=5))
    assert slots.active() == "a"
    trial = slots.trial()
    assert trial is not None
    assert trial.previous == ""  # the first update can fall back to the factory
    assert slots.rollback() == ""
    assert slots.active() is None  # the factory install runs again
    slots.switch(first, deadline=NOW)
    slots.commit()
    second = slots.install(bundle(tmp_path, "1.1.0"))
    assert second == "b"
    slots.switch(second, deadline=NOW + timedelta(minutes=5))
    assert slots.recover(NOW) == "trial"  # first boot of 1.1.0
    assert (slots.current / "app" / "main.py").read_text() == "VERSION = '1.1.0'\n"
    assert slots.recover(NOW) == "trial"  # second boot
    assert slots.recover(NOW) == "rolled_back"  # never committed: back to 1.0.0
    assert slots.active() == "a"
    assert slots.version("a") == "1.0.0"
    third = slots.install(bundle(tmp_path, "1.2.0"))
    slots.switch(third, deadline=NOW + timedelta(minutes=5))
    assert slots.recover(NOW) == "trial"
    slots.commit()
    assert slots.recover(NOW + timedelta(hours=1)) == "none"
    assert slots.version(str(slots.active())) == "1.2.0"


def test_deadline_rolls_back_and_bad_archives_are_refused(tmp_path: Path) -> None:
    slots = Slots(tmp_path / "node")
    slots.switch(slots.install(bundle(tmp_path, "1.0.0")), deadline=NOW)
    slots.commit()
    slots.switch(
        slots.install(bundle(tmp_path, "2.0.0")), deadline=NOW + timedelta(minutes=1)
    )
    assert slots.recover(NOW + timedelta(minutes=2)) == "rolled_back"
    with pytest.raises(SlotError, match=r"no release\.json"):
        slots.install(bundle(tmp_path, "3.0.0", junk=True))
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar")
    with pytest.raises(SlotError, match="cannot unpack"):
        slots.install(bad)
    assert slots.version(str(slots.active())) == "1.0.0"


SWITCHER = """
import sys, time
from datetime import datetime, UTC, timedelta
from pathlib import Path
from edge.ota.slots import Slots
slots = Slots(Path(sys.argv[1]))
bundles = [Path(p) for p in sys.argv[2:]]
n = 0
while True:
    slot = slots.install(bundles[n % 2])
    slots.switch(slot, deadline=datetime.now(UTC) + timedelta(minutes=5))
    slots.commit()
    n += 1
"""


def test_kill_minus_nine_during_install_and_switch_leaves_a_node_that_starts(
    tmp_path: Path,
) -> None:
    root = tmp_path / "node"
    slots = Slots(root)
    slots.switch(slots.install(bundle(tmp_path, "1.0.0")), deadline=NOW)
    slots.commit()
    bundles = [str(bundle(tmp_path, "1.1.0")), str(bundle(tmp_path, "1.2.0"))]
    for delay in (0.05, 0.11, 0.17, 0.23, 0.31):
        proc = subprocess.Popen(
            [sys.executable, "-c", SWITCHER, str(root), *bundles],
            env={**os.environ, "PYTHONPATH": str(Path.cwd())},
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert slots.recover(datetime.now(UTC)) in {
            "none",
            "trial",
            "dropped",
            "rolled_back",
        }
        active = slots.active()
        assert active is not None
        # current resolves to a complete release, whatever the moment of death
        assert (slots.current / "release.json").is_file()
        assert (slots.current / "app" / "main.py").is_file()
        slots.commit()
