"""OTA end to end: central, Mosquitto, HTTP and a node under ``baling supervise``.

A good release is rolled out and committed after the node restarts into its
new slot; a release whose code does not start is rolled back by the
supervisor on the node and the rollout cancels itself. A download killed
with SIGKILL resumes where it stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from support.waiting import wait_until

from central.fleet import registry
from central.models import Device
from central.ota.models import RolloutNode, RolloutRow
from central.ota.release import build, publish
from central.ota.repository import Repository
from central.ota.rollout import Plan
from central.ota.service import OtaService
from edge.clock import ManualClock
from edge.ota.fetch import HttpFetcher
from edge.ota.updater import Sources, fetch_release
from edge.protocol.signing import public_key_text

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from central.main import Central

pytestmark = pytest.mark.mqtt
ROOT = Path(__file__).resolve().parents[2]
T0 = datetime.now(UTC)


def release(central_dir: Path, tmp: Path, version: str, source: Path = ROOT) -> str:
    archive = build("sim", version, min_from="0", out=tmp / "dist", source=source)
    return publish(
        archive,
        repo_dir=central_dir / "ota" / "image",
        offline=tmp / "offline",
        online=central_dir / "ota-online-keys",
        now=datetime.now(UTC),
    )


def broken_source(tmp: Path) -> Path:
    """The sources with the sim node's module replaced by one that exits."""
    source = tmp / "broken"
    for package in ("edge", "baling", "firmware_sim"):
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("*.pyc")
        )
    (source / "firmware_sim" / "eventnode.py").write_text("raise SystemExit(3)\n")
    return source


@pytest.fixture
def supervised(
    make_central: Callable[..., Central],
    sqlite_url: str,
    serve_app: Callable[..., str],
    broker: Any,
    tmp_path: Path,
) -> Iterator[tuple[Central, Path]]:
    central = make_central(sqlite_url)
    base = serve_app(central.app)
    central_dir = tmp_path / "central"
    release(central_dir, tmp_path, "1.1.0")
    with Session(central.services.engine) as session:
        registry.register(session, device_id="sim-1", kind="sim", now=T0)
    node_dir = tmp_path / "node"
    (node_dir / "ota").mkdir(parents=True)
    (node_dir / "ota" / "image-root.json").write_bytes(
        Repository(central_dir / "ota" / "image").root_bytes()
    )
    assert central.ota is not None
    (node_dir / "ota" / "director-root.json").write_bytes(
        central.ota.director("sim-1").root_bytes()
    )
    key = public_key_text(central.command_key.public_key())
    config = node_dir / "node.toml"
    config.write_text(
        f'device_id = "sim-1"\nkind = "sim"\ndata_dir = "{node_dir}"\n'
        f"broker_port = {broker.port}\nheartbeat_s = 1\n"
        f'command_keys = ["{key}"]\nota_url = "{base}/ota"\n'
        "ota_settle_s = 1\nota_deadline_s = 60\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "baling.cli",
            "supervise",
            "sim",
            "--config",
            str(config),
        ]
    )
    yield central, tmp_path
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def rollout(central: Central, name: str, version: str) -> int:
    assert central.ota is not None
    with Session(central.services.engine) as session:
        row = central.ota.start(
            session,
            release=name,
            version=version,
            kind="sim",
            by="ops",
            plan=Plan(canary=1, min_sample=1, node_timeout_s=300),
        )
        return int(row.id or 0)


def rollout_state(central: Central, rid: int) -> tuple[str, str, str]:
    with Session(central.services.engine) as session:
        row = session.get(RolloutRow, rid)
        node = session.get(RolloutNode, (rid, "sim-1"))
        assert row is not None
        assert node is not None
        return row.state, node.fw_state, node.reason


def version(central: Central) -> str:
    with Session(central.services.engine) as session:
        device = session.get(Device, "sim-1")
        return device.version if device else ""


@pytest.mark.slow
def test_a_good_release_commits_and_a_broken_one_rolls_back(
    supervised: tuple[Central, Path],
) -> None:
    central, tmp = supervised
    wait_until(
        lambda: version(central) == "0.1.0", timeout=60
    )  # the factory install is up
    good = rollout(central, "baling-sim-1.1.0.tar", "1.1.0")
    wait_until(lambda: rollout_state(central, good)[0] == "done", timeout=90)
    assert rollout_state(central, good)[1] == "committed"
    wait_until(lambda: version(central) == "1.1.0", timeout=60)

    bad = release(tmp / "central", tmp, "1.2.0", source=broken_source(tmp))
    rid = rollout(central, bad, "1.2.0")
    wait_until(lambda: rollout_state(central, rid)[0] == "cancelled", timeout=120)
    _state, fw_state, reason = rollout_state(central, rid)
    assert fw_state == "rolled_back"
    assert "did not stay up (exit status 3)" in reason
    wait_until(
        lambda: version(central) == "1.1.0", timeout=60
    )  # running the old slot again


SLOW_DOWNLOAD = """
import sys, time
from pathlib import Path
from edge.ota.fetch import HttpFetcher
fetcher = HttpFetcher(Path(sys.argv[1]))
for chunk in fetcher.fetch(sys.argv[2]):
    time.sleep(0.5)  # a slow mobile link
"""


def test_a_download_killed_with_sigkill_resumes(
    serve_app: Callable[..., str], tmp_path: Path
) -> None:
    service = OtaService(clock=ManualClock(T0), data_dir=tmp_path / "central")
    name = release(tmp_path / "central", tmp_path, "1.1.0")
    service.assign("sim-1", name)
    base = serve_app(
        Starlette(routes=[Mount("/ota", StaticFiles(directory=service.root))])
    )
    info = Repository(service.image_dir).load("targets").signed.targets[name]
    url = f"{base}/ota/image/targets/{info.hashes['sha256']}.{name}"
    partial = tmp_path / "node" / "ota" / "partial"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_DOWNLOAD, str(partial), url],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        wait_until(
            lambda: any(p.stat().st_size >= 64 * 1024 for p in partial.glob("*.part")),
            timeout=30,
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (part,) = partial.glob("*.part")
    had = part.stat().st_size
    assert 0 < had < info.length

    fetcher = HttpFetcher(partial)
    fetched = fetch_release(
        name,
        sources=Sources(
            image_url=f"{base}/ota/image/metadata/",
            image_targets_url=f"{base}/ota/image/targets/",
            director_url=f"{base}/ota/director/sim-1/metadata/",
            image_root=Repository(service.image_dir).root_bytes(),
            director_root=service.director("sim-1").root_bytes(),
        ),
        cache=tmp_path / "node" / "ota" / "cache",
        fetcher=fetcher,
    )
    assert fetched.path.read_bytes() == (tmp_path / "dist" / name).read_bytes()
    metadata = fetcher.received - (info.length - had)
    assert metadata < 64 * 1024  # only the rest of the release was fetched again
    assert not list(partial.glob("*.part"))
