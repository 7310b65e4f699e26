"""Commands that change a node's trust are not generic commands.

Finding 2: a technician sent ``trust_key`` through the generic command route,
added their own command key to a node or removed central's. Here a real
Mosquitto, a real central and a simulated node (the edge agent, which
accepts ``trust_key`` only when signed): the generic route refuses the
dangerous names for every role, the dedicated route is admin-only with a
mandatory reason, and a rotation done there is audited with its reason and
takes effect on the node.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.waiting import wait_until

from central.fleet import registry
from central.operators.auth import create_operator
from edge import Agent, NodeSettings, SystemClock, build_agent
from edge.protocol.signing import key_id, public_key_text
from firmware_sim.eventnode import SimAgent

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from baling.broker import Mosquitto
    from central.main import Central

pytestmark = pytest.mark.mqtt
PASSWORD = "correct horse battery"
CLOCK = SystemClock()
World = tuple["Central", Agent, TestClient, dict[str, dict[str, str]]]


@pytest.fixture
def world(
    make_central: Any, sqlite_url: str, broker: Mosquitto, tmp_path: Path
) -> Iterator[World]:
    central: Central = make_central(sqlite_url)
    with Session(central.services.engine) as s:
        registry.register(
            s, device_id="sim-1", kind="sim", site="north", now=CLOCK.now()
        )
        for user, role in (("root", "admin"), ("tech", "technician")):
            create_operator(
                s, username=user, password=PASSWORD, role=role, now=CLOCK.now()
            )
    agent: Agent = build_agent(
        SimAgent,
        NodeSettings(
            device_id="sim-1",
            kind="sim",
            data_dir=tmp_path / "sim-1",
            broker_port=broker.port,
            heartbeat_s=1,
            command_keys=[public_key_text(central.command_key.public_key())],
        ),
    )
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    client = TestClient(central.app)
    tokens = {}
    for user in ("root", "tech"):
        token = client.post(
            "/api/v1/auth/token", data={"username": user, "password": PASSWORD}
        ).json()["access_token"]
        tokens[user] = {"Authorization": f"Bearer {token}"}
    wait_until(lambda: client.get("/healthz").json()["broker"])
    try:
        yield central, agent, client, tokens
    finally:
        stop.set()
        thread.join(10)


def test_the_generic_route_refuses_trust_commands_for_every_role(world: World) -> None:
    central, agent, client, tokens = world
    central_kid = key_id(central.command_key.public_key())
    intruder = public_key_text(Ed25519PrivateKey.generate().public_key())
    for who in ("tech", "root"):
        for name, args in (
            ("trust_key", {"remove": central_kid}),
            ("trust_key", {"add": intruder}),
            ("factory_reset", {}),
        ):
            r = client.post(
                f"/api/v1/devices/sim-1/commands/{name}",
                json={"args": args},
                headers=tokens[who],
            )
            assert r.status_code == 403, (who, name, r.text)
            assert "/trust-key" in r.json()["detail"]
    trusted = agent.trust.keys()
    assert list(trusted) == [central_kid]
    # Everyday commands still go through.
    ping = client.post(
        "/api/v1/devices/sim-1/commands/ping", json={}, headers=tokens["tech"]
    )
    assert ping.json()["ok"] is True


def test_rotation_is_admin_only_with_a_reason_and_audited(world: World) -> None:
    _, agent, client, tokens = world
    new = Ed25519PrivateKey.generate().public_key()
    rotation = {"add": public_key_text(new), "reason": "年度密钥轮换 2026-12"}
    by_tech = client.post(
        "/api/v1/devices/sim-1/trust-key", json=rotation, headers=tokens["tech"]
    )
    assert by_tech.status_code == 403
    assert "trust" in by_tech.json()["detail"]
    for bad in (
        {"add": rotation["add"]},  # no reason
        {"add": rotation["add"], "reason": "x"},  # a token one
        {"reason": rotation["reason"]},  # nothing to do
        {"add": "not a key", "reason": rotation["reason"]},
    ):
        r = client.post(
            "/api/v1/devices/sim-1/trust-key", json=bad, headers=tokens["root"]
        )
        assert r.status_code == 422, (bad, r.text)
    assert len(agent.trust.keys()) == 1
    done = client.post(
        "/api/v1/devices/sim-1/trust-key", json=rotation, headers=tokens["root"]
    )
    assert done.status_code == 200, done.text
    assert done.json()["ok"] is True
    assert done.json()["result"] == {"added": key_id(new)}
    trusted = agent.trust.keys()
    assert key_id(new) in set(trusted)
    (record,) = client.get(
        "/api/v1/audit", params={"action": "trust.rotate"}, headers=tokens["root"]
    ).json()
    assert record["actor"] == "root"
    assert record["target"] == "sim-1/trust_key"
    assert record["detail"]["reason"] == rotation["reason"]
