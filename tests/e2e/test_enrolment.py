"""A technician's enrolment, end to end, on a mutual-TLS Mosquitto.

Code from the console API → `baling provision enroll` on the node → the node
starts from the written settings, connects with its own certificate and
shows online at its site; wrong, used and expired codes and a wrong clock
are refused with advice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from baling.broker import free_port
from baling.securesite import SecureSite
from central.fleet import registry
from central.operators.auth import create_operator
from edge import NodeSettings, build_agent, load_settings
from firmware_sim.eventnode import SimAgent
from provisioning.enroll import EnrolError, enroll

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
PASSWORD = "correct horse battery"


@pytest.fixture
def site(tmp_path: Path, sqlite_url: str) -> Iterator[dict[str, Any]]:
    secure = SecureSite(tmp_path, database_url=sqlite_url)
    secure.start()
    central = secure.central
    with Session(central.services.engine) as s:
        create_operator(
            s,
            username="tech",
            password=PASSWORD,
            role="technician",
            now=datetime.now(UTC),
        )
    client = TestClient(central.app)
    token = client.post(
        "/api/v1/auth/token", data={"username": "tech", "password": PASSWORD}
    ).json()["access_token"]
    yield {
        "central": central,
        "client": client,
        "auth": {"Authorization": f"Bearer {token}"},
        "url": secure.url,
        "ota_url": secure.ota_url,
        "broker": secure.broker,
    }
    secure.stop()


def test_technician_enrols_a_node_that_comes_online_over_mtls(
    site: dict[str, Any], tmp_path: Path
) -> None:
    client, auth, central = site["client"], site["auth"], site["central"]
    made = client.post(
        "/api/v1/enrolment/codes",
        headers=auth,
        json={"kind": "sim", "site": "rongjiawan"},
    ).json()
    assert len(made["code"]) == 9
    lines: list[str] = []
    result = enroll(
        site["url"], made["code"].lower(), tmp_path / "node", say=lines.append
    )
    assert result.device_id == made["device_id"]
    assert lines[0].startswith("1/4")
    assert lines[-1].startswith("done")
    assert (tmp_path / "node" / "node.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "node").stat().st_mode & 0o777 == 0o700
    settings = load_settings(NodeSettings, result.config)
    assert settings.require_signed_commands is True
    # the update roots are pinned at enrolment, and the node knows where to look:
    # the mutual-TLS listener, not the plain HTTP app
    assert settings.ota_url == site["ota_url"]
    assert central.ota is not None
    image_root, director_root = central.ota.trust_anchors(result.device_id) or (
        b"",
        b"",
    )
    assert (tmp_path / "node" / "ota" / "image-root.json").read_bytes() == image_root
    assert (
        tmp_path / "node" / "ota" / "director-root.json"
    ).read_bytes() == director_root
    agent = build_agent(SimAgent, settings)
    stop = threading.Event()
    node = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    node.start()
    try:
        deadline = time.monotonic() + 20
        device = None
        while time.monotonic() < deadline:
            with Session(central.services.engine) as s:
                device = registry.get(s, result.device_id)
                if device.online:
                    break
            time.sleep(0.2)
        assert device is not None
        assert device.online is True
        assert device.site == "rongjiawan"
        assert central.link.command(result.device_id, "ping", {}, timeout=10).ok is True
    finally:
        stop.set()
        node.join(10)
    with pytest.raises(EnrolError, match="already used"):
        enroll(site["url"], made["code"], tmp_path / "again", say=lambda _m: None)


def test_bad_codes_and_clocks_are_refused_with_advice(
    site: dict[str, Any], tmp_path: Path
) -> None:
    client, auth = site["client"], site["auth"]
    with pytest.raises(EnrolError, match="not known"):
        enroll(site["url"], "K7QP-M2XD", tmp_path / "a", say=lambda _m: None)
    with pytest.raises(EnrolError, match="expected a code like"):
        enroll(site["url"], "hello", tmp_path / "b", say=lambda _m: None)
    code = client.post(
        "/api/v1/enrolment/codes", headers=auth, json={"kind": "sim", "ttl_h": 1}
    ).json()["code"]
    with pytest.raises(EnrolError, match="clock"):
        enroll(
            site["url"],
            code,
            tmp_path / "c",
            say=lambda _m: None,
            now=datetime.now(UTC) - timedelta(hours=2),
        )
    with pytest.raises(EnrolError, match="unreachable"):
        enroll(
            f"http://127.0.0.1:{free_port()}", code, tmp_path / "d", say=lambda _m: None
        )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "baling.cli",
            "provision",
            "enroll",
            "--central",
            site["url"],
            "--code",
            "ZZZZ-ZZZZ",
            "--data-dir",
            str(tmp_path / "e"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "enroll stopped: this code is not known" in proc.stderr


def _run(config: Path) -> tuple[SimAgent, threading.Event, threading.Thread]:
    agent = build_agent(SimAgent, load_settings(NodeSettings, config))
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    return agent, stop, thread


def test_replace_moves_the_site_and_retire_locks_the_old_node_out(
    site: dict[str, Any], tmp_path: Path
) -> None:
    client, auth = site["client"], site["auth"]
    codes = [
        client.post(
            "/api/v1/enrolment/codes", headers=auth, json={"kind": "sim", "site": s}
        ).json()
        for s in ("xinqiang", "")
    ]
    old = enroll(site["url"], codes[0]["code"], tmp_path / "old", say=lambda _m: None)
    new = enroll(site["url"], codes[1]["code"], tmp_path / "new", say=lambda _m: None)
    client.put(
        f"/api/v1/policy/device/{old.device_id}", headers=auth, json={"heartbeat_s": 15}
    )
    agent, stop, thread = _run(old.config)
    try:
        assert agent.bus.wait_connected(10)  # type: ignore[attr-defined]
        moved = client.post(
            f"/api/v1/devices/{old.device_id}/replace",
            headers=auth,
            json={"new": new.device_id},
        ).json()
        assert moved.get("site") == "xinqiang", moved
        config = client.get(
            f"/api/v1/devices/{new.device_id}/config", headers=auth
        ).json()
        assert config["desired"]["values"]["heartbeat_s"] == 15
        gone = client.get(f"/api/v1/devices/{old.device_id}", headers=auth).json()
        assert gone["retired_at"] is not None
        # no restart: central ejects the retired node's session and the broker
        # re-reads the CRL on the watch's SIGHUP (tests/security has the details)
        deadline = time.monotonic() + 10
        while agent.bus.connected and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not agent.bus.connected
    finally:
        stop.set()
        thread.join(10)
    successor, stop2, thread2 = _run(new.config)
    try:
        assert successor.bus.wait_connected(10)  # type: ignore[attr-defined]
    finally:
        stop2.set()
        thread2.join(10)


def test_technician_command_line(site: dict[str, Any], tmp_path: Path) -> None:
    from central.operators.auth import create_operator as add  # noqa: PLC0415

    with Session(site["central"].services.engine) as s:
        add(
            s,
            username="li.tech",
            password=PASSWORD,
            role="technician",
            now=datetime.now(UTC),
        )
    env = {**os.environ, "BALING_PASSWORD": PASSWORD}
    base = [sys.executable, "-m", "baling.cli", "provision"]
    made = subprocess.run(
        [
            *base,
            "code",
            "--central",
            site["url"],
            "--user",
            "li.tech",
            "--kind",
            "sim",
            "--site",
            "lukou",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    answer = json.loads(made.stdout)
    assert answer["site"] == "lukou"
    done = subprocess.run(
        [
            *base,
            "enroll",
            "--central",
            site["url"],
            "--code",
            answer["code"],
            "--data-dir",
            str(tmp_path / "n"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "done: start the node" in done.stdout
    gone = subprocess.run(
        [
            *base,
            "retire",
            "--central",
            site["url"],
            "--user",
            "li.tech",
            answer["device_id"],
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert json.loads(gone.stdout)["revoked"] == 1
    wrong = subprocess.run(
        [*base, "retire", "--central", site["url"], "--user", "li.tech", "nope"],
        env={**env, "BALING_PASSWORD": "wrong password"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert wrong.returncode == 1
    assert "incorrect username or password" in wrong.stderr
    conf = subprocess.run(
        [
            *base,
            "broker-config",
            "--dir",
            str(tmp_path / "bc"),
            "--ca-file",
            "ca.pem",
            "--cert-file",
            "s.pem",
            "--key-file",
            "s.key",
            "--crl-file",
            "crl.pem",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert conf.returncode == 0
    assert (
        "require_certificate true" in (tmp_path / "bc" / "mosquitto.conf").read_text()
    )


def test_a_broker_that_refuses_is_reported(
    site: dict[str, Any], tmp_path: Path
) -> None:
    client, auth, central = site["client"], site["auth"], site["central"]
    code = client.post(
        "/api/v1/enrolment/codes", headers=auth, json={"kind": "sim"}
    ).json()["code"]
    settings = central.services.settings
    real = settings.broker_tls_port
    settings.broker_tls_port = free_port()  # nothing listens there
    try:
        with pytest.raises(EnrolError, match="refused this node's certificate"):
            enroll(site["url"], code, tmp_path / "n", say=lambda _m: None)
    finally:
        settings.broker_tls_port = real
    assert (tmp_path / "n" / "node.toml").exists()  # written; only the check failed
