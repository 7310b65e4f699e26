"""Bounded everything: oversize commands, configs, policies and bodies.

Finding 4: one publish over Mosquitto's ``max_packet_size`` made the broker
drop central's link, and paho resent it on every reconnect. Here a real
Mosquitto (``max_packet_size 1048576``, baling/broker.py), a real central
and a simulated node on the wire: central refuses the oversize publish up
front with 413 naming the limit, never queues it, ``/healthz`` keeps
reporting the broker up and the next command still works.

Finding 12: bodies are refused before they are read. A real uvicorn serves
the app and a raw socket plays the attacker.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.central import central_services
from support.waiting import wait_until

from central.app import create_app
from central.fleet import registry
from central.messaging.link import PacketTooLargeError
from central.messaging.outbound import Outbound, Sender
from central.operators.auth import create_operator
from edge import Agent, NodeSettings, SystemClock, build_agent
from edge.protocol.signing import public_key_text
from firmware_sim.eventnode import SimAgent

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from baling.broker import Mosquitto
    from central.main import Central

PASSWORD = "correct horse battery"
CLOCK = SystemClock()
MIB = 1024 * 1024


@pytest.fixture
def live(
    make_central: Any, sqlite_url: str, broker: Mosquitto, tmp_path: Path
) -> Iterator[tuple[Central, TestClient, dict[str, str]]]:
    central: Central = make_central(sqlite_url)
    with Session(central.services.engine) as s:
        registry.register(s, device_id="sim-1", kind="sim", now=CLOCK.now())
        create_operator(
            s, username="root", password=PASSWORD, role="admin", now=CLOCK.now()
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
            require_signed_commands=True,
        ),
    )
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    client = TestClient(central.app)
    token = client.post(
        "/api/v1/auth/token", data={"username": "root", "password": PASSWORD}
    ).json()["access_token"]
    try:
        yield central, client, {"Authorization": f"Bearer {token}"}
    finally:
        stop.set()
        thread.join(10)


def _ping(client: TestClient, auth: dict[str, str]) -> dict[str, Any]:
    r = client.post("/api/v1/devices/sim-1/commands/ping", headers=auth, json={})
    assert r.status_code == 200, r.text
    reply: dict[str, Any] = r.json()
    return reply


@pytest.mark.mqtt
def test_an_oversize_command_is_refused_and_the_link_stays_up(
    live: tuple[Central, TestClient, dict[str, str]],
) -> None:
    central, client, auth = live
    wait_until(lambda: client.get("/healthz").json()["broker"])
    assert _ping(client, auth)["ok"] is True
    # Just under the 1 MiB body limit, but over the broker's packet limit
    # once signed and wrapped in its envelope.
    big = client.post(
        "/api/v1/devices/sim-1/commands/ping",
        headers=auth,
        json={"args": {"blob": "x" * 1_048_000}},
    )
    assert big.status_code == 413
    assert "max_packet_size of 1048576 bytes" in big.json()["detail"]
    # The link's own guard: refuse, never queue (the last line behind the API).
    with pytest.raises(PacketTooLargeError, match="at most 1048576 bytes"):
        central.link.command("sim-1", "ping", {"blob": "x" * 2 * MIB}, timeout=1)
    with pytest.raises(PacketTooLargeError):
        central.link.publish_config(
            "sim-1", version="v", values={"blob": "x" * 2 * MIB}
        )
    with pytest.raises(PacketTooLargeError):
        central.link.send("sim-1", "alert", {"blob": "x" * 2 * MIB})
    # What services send after a commit: the oversize one is dropped (and
    # logged), the worker goes on, the next command goes out.
    sender = Sender(clock=CLOCK, link=central.link)
    sender.deliver(
        Outbound(
            commands=[
                ("alert", "sim-1", {"blob": "x" * 2 * MIB}),
                ("ping", "sim-1", {}),
            ]
        )
    )
    time.sleep(1.5)  # what a dropped link would need to show
    assert client.get("/healthz").json() == {"ok": True, "broker": True}
    assert central.link.bus.connected
    assert _ping(client, auth) == {
        "command": "ping",
        "ok": True,
        "error": "",
        "result": {"pong": True},
    }


@pytest.mark.mqtt
def test_an_oversize_policy_or_config_is_refused_before_it_is_stored(
    live: tuple[Central, TestClient, dict[str, str]],
) -> None:
    central, client, auth = live
    wait_until(lambda: client.get("/healthz").json()["broker"])
    # Finding 4's camera junction: the schema bounds it, so it is never stored.
    camera = client.put(
        "/api/v1/policy/kind/camera", headers=auth, json={"junction": "j" * 1_000_000}
    )
    assert camera.status_code == 422
    assert "junction" in camera.json()["detail"]
    assert "at most 64" in camera.json()["detail"]
    # A layer over the packet limit as a whole: 413 naming it.
    packed = client.put(
        "/api/v1/policy/fleet/*",
        headers=auth,
        json={f"k{i}": "v" * 4100 for i in range(255)},
    )
    assert packed.status_code == 413
    assert "max_packet_size of 1048576 bytes" in packed.json()["detail"]
    assert client.get("/api/v1/policy", headers=auth).json() == []
    # A 2 MB body is cut off by the body limit before it is parsed.
    huge = client.put(
        "/api/v1/policy/fleet/*", headers=auth, json={"junction": "j" * 2 * MIB}
    )
    assert huge.status_code == 413
    assert "at most 1048576 bytes" in huge.json()["detail"]
    assert client.get("/healthz").json()["broker"] is True
    assert _ping(client, auth)["ok"] is True
    assert central.link.bus.connected


# -- bodies -----------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path, serve_app: Any) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    services = central_services(url, tmp_path, clock=CLOCK)
    engine = services.engine
    with Session(engine) as s:
        create_operator(
            s, username="tech", password=PASSWORD, role="technician", now=CLOCK.now()
        )
    app = create_app(services)
    with TestClient(app) as client:
        token = client.post(
            "/api/v1/auth/token", data={"username": "tech", "password": PASSWORD}
        ).json()["access_token"]
    base = serve_app(app)
    yield base, token
    engine.dispose()


def _rss() -> int:
    with open("/proc/self/status", encoding="ascii") as status:  # noqa: PTH123
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _push(base: str, head: str, *, chunked: bool) -> tuple[bytes, int]:
    """Send ``head``, then body bytes until central answers or 100 MB went out.

    Returns:
        The start of central's answer and how many body bytes were sent.
    """
    port = int(base.rsplit(":", 1)[1])
    piece = b"x" * (64 * 1024)
    frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        try:
            while sent < 100 * MIB:
                sock.sendall(frame)
                sent += len(piece)
                ready, _, _ = select.select([sock], [], [], 0)
                if ready:
                    break  # central answered: stop pushing
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _read_all(sock)
    return answer, sent


def _read_all(sock: socket.socket) -> bytes:
    """Central's whole answer (it closes the connection after a refusal)."""
    sock.settimeout(10)
    answer = b""
    try:
        while part := sock.recv(4096):
            answer += part
            if b"\r\n\r\n" in answer and answer.endswith(b"}"):
                break
    except ConnectionResetError:
        pass
    return answer


def test_a_declared_100_mb_body_without_a_token_is_refused_at_once(
    served: tuple[str, str],
) -> None:
    base, _ = served
    port = int(base.rsplit(":", 1)[1])
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/devices HTTP/1.1\r\nHost: central\r\n"
            b"Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
        )
        answer = _read_all(sock)  # no body sent: central must not wait for it
    assert time.monotonic() - started < 2
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"without a token of at most 65536 bytes" in answer


def test_a_streamed_100_mb_body_without_a_token_is_cut_off_unread(
    served: tuple[str, str],
) -> None:
    base, _ = served
    before = _rss()
    # Chunked: no declared length, so only counting the bytes catches it.
    answer, sent = _push(
        base,
        "POST /api/v1/devices HTTP/1.1\r\nHost: central\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        chunked=True,
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b"without a token of at most 65536 bytes" in answer
    assert sent < 16 * MIB  # central stopped reading long before 100 MB
    assert _rss() - before < 32 * MIB


def test_a_streamed_body_with_a_token_stops_at_the_json_limit(
    served: tuple[str, str],
) -> None:
    base, token = served
    before = _rss()
    answer, sent = _push(
        base,
        "PUT /api/v1/policy/fleet/* HTTP/1.1\r\nHost: central\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        chunked=True,
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b"a request body of at most 1048576 bytes" in answer
    assert sent < 16 * MIB
    assert _rss() - before < 32 * MIB


def test_without_a_token_a_small_body_gets_401_not_a_limit(
    served: tuple[str, str],
) -> None:
    base, _ = served
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/devices HTTP/1.1\r\nHost: central\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 401")
