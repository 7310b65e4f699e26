"""The deployment files in deploy/ are what central and Mosquitto accept."""

from __future__ import annotations

import configparser
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa

from baling.broker import Mosquitto, free_port
from central.settings import CentralSettings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def settings(monkeypatch: pytest.MonkeyPatch, *files: Path) -> CentralSettings:
    for f in files:
        for key, value in env_file(f).items():
            monkeypatch.setenv(key, value)
    return CentralSettings()  # type: ignore[call-arg]


def test_a_site_s_workers_split_the_devices_and_one_keeps_presence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared = DEPLOY / "site" / "central.env"
    workers = []
    for own in sorted((DEPLOY / "site").glob("central-*.env")):
        with monkeypatch.context() as m:
            workers.append(settings(m, shared, own))
    assert len(workers) >= 2
    # every partition k/n exactly once (Mosquitto keeps plain subscriptions)
    parts = sorted(w.ingest_partition or "" for w in workers)
    assert parts == [f"{k}/{len(workers)}" for k in range(1, len(workers) + 1)]
    assert [w.ingest_presence for w in workers].count(True) == 1
    assert len({w.worker_id for w in workers}) == len(workers)
    assert len({w.http_port for w in workers}) == len(workers)


def test_the_systemd_unit_runs_central_with_both_environment_files() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "site" / "baling-central@.service", encoding="utf-8")
    service = unit["Service"]
    assert service["ExecStart"].endswith("baling central")
    assert service["Restart"] == "always"
    text = (DEPLOY / "site" / "baling-central@.service").read_text(encoding="utf-8")
    assert "EnvironmentFile=/etc/baling/central.env" in text
    assert "EnvironmentFile=/etc/baling/central-%i.env" in text


def test_the_cluster_reaches_whichever_postgres_accepts_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = settings(monkeypatch, DEPLOY / "cluster" / "central.env")
    url = sa.make_url(s.database_url)
    args = sa.create_engine(url).dialect.create_connect_args(url)[1]
    assert args["host"] == "pg-1.baling.local,pg-2.baling.local"
    assert args["target_session_attrs"] == "read-write"
    assert s.ingest_shared


@pytest.mark.mqtt
def test_the_site_s_mosquitto_configuration_runs(tmp_path: Path) -> None:
    port = free_port()
    conf = (DEPLOY / "site" / "mosquitto.conf").read_text(encoding="utf-8")
    conf = conf.replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1")
    conf = conf.replace("/var/lib/mosquitto/", f"{tmp_path}/")
    (tmp_path / "baling.conf").write_text("user root\n" + conf, encoding="utf-8")
    broker = Mosquitto(data_dir=tmp_path, port=port, conf=tmp_path / "baling.conf")
    broker.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        broker.stop()
