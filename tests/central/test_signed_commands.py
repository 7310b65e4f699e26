"""Signed commands end to end: central signs; the node refuses forgeries."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session, select

from central.fleet import registry
from central.models import Event
from edge import NodeSettings, PahoBus, Received, SystemClock, build_agent
from edge.protocol import decode, encode, make, topics
from edge.protocol.signing import key_id, public_key_text, sign_command
from firmware_sim.eventnode import SimAgent

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from baling.broker import Mosquitto
    from central.main import Central

pytestmark = pytest.mark.mqtt
CLOCK = SystemClock()


@pytest.fixture
def setup(
    make_central: Any, sqlite_url: str, broker: Mosquitto, tmp_path: Path
) -> Iterator[tuple[Central, SimAgent, PahoBus]]:
    central: Central = make_central(sqlite_url)
    with Session(central.services.engine) as s:
        registry.register(s, device_id="cab-1", kind="sim", now=CLOCK.now())
    trusted = public_key_text(central.command_key.public_key())
    agent = build_agent(
        SimAgent,
        NodeSettings(
            device_id="cab-1",
            kind="sim",
            data_dir=tmp_path / "n",
            broker_port=broker.port,
            command_keys=[trusted],
            require_signed_commands=True,
        ),
    )
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    spy = PahoBus(
        client_id="spy",
        host="127.0.0.1",
        port=broker.port,
        subscriptions=[("bl/v1/cab-1/reply", 1)],
        clean_start=True,
        session_expiry=0,
    )
    spy.start()
    assert spy.wait_subscribed(5)
    assert isinstance(agent.bus, PahoBus)
    assert agent.bus.wait_subscribed(10)
    yield central, agent, spy
    spy.stop()
    stop.set()
    thread.join(10)


def send(spy: PahoBus, name: str, body: dict[str, Any], corr: bytes) -> dict[str, Any]:
    env = make("cab-1", name, body, now=CLOCK.now())
    spy.publish(
        topics.command("cab-1", name),
        encode(env),
        response_topic=topics.reply("cab-1"),
        correlation=corr,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        item = spy.inbox.get(timeout=10)
        if isinstance(item, Received) and item.correlation == corr:
            return decode(item.payload).body
    raise AssertionError("no reply")


def test_central_signs_and_the_node_refuses_forgeries(
    setup: tuple[Central, SimAgent, PahoBus],
) -> None:
    central, _agent, spy = setup
    assert central.link.command("cab-1", "ping", {}, timeout=10).ok is True
    forger = Ed25519PrivateKey.generate()
    forged = sign_command(
        forger, device="cab-1", name="ping", args={}, nonce="f1", now=CLOCK.now()
    )
    assert send(spy, "ping", forged, b"1")["error"].startswith("unknown_key")
    assert send(spy, "ping", {"args": {}}, b"2")["error"].startswith("unsigned")
    good = sign_command(
        central.command_key,
        device="cab-1",
        name="ping",
        args={},
        nonce="r1",
        now=CLOCK.now(),
    )
    assert send(spy, "ping", good, b"3")["ok"] is True
    assert send(spy, "ping", good, b"4")["error"].startswith("replay")
    # Refusals reach central as security events (audited there).
    deadline = time.monotonic() + 10
    reasons: list[str] = []
    while time.monotonic() < deadline and len(reasons) < 3:
        with Session(central.services.engine) as s:
            rows = s.exec(select(Event).where(Event.type == "security")).all()
            reasons = sorted(r.body["reason"] for r in rows)
        time.sleep(0.1)
    assert reasons == ["replay", "unknown_key", "unsigned"]
    refused = central.services.audit.search(action="command.refused")
    assert sorted(r.detail["reason"] for r in refused) == reasons
    assert {r.actor for r in refused} == {"cab-1"}


def test_key_rotation_without_re_enrolment(
    setup: tuple[Central, SimAgent, PahoBus],
) -> None:
    central, agent, spy = setup
    new = Ed25519PrivateKey.generate()
    unsigned = send(
        spy, "trust_key", {"args": {"add": public_key_text(new.public_key())}}, b"u"
    )
    assert unsigned["ok"] is False
    reply = central.link.command(
        "cab-1", "trust_key", {"add": public_key_text(new.public_key())}, timeout=10
    )
    assert reply.ok is True
    assert reply.result["added"] == key_id(new.public_key())
    central.link.signer = new
    old_kid = key_id(central.command_key.public_key())
    assert central.link.command("cab-1", "trust_key", {"remove": old_kid}).ok is True
    assert set(agent.trust.keys()) == {key_id(new.public_key())}
    stale = sign_command(
        central.command_key,
        device="cab-1",
        name="ping",
        args={},
        nonce="s1",
        now=CLOCK.now(),
    )
    assert send(spy, "ping", stale, b"s")["error"].startswith("unknown_key")
