"""tests/support's helpers do what the tests lean on them for.

Waiting returns the awaited value and names what it waited for; logging in
works through a ``TestClient`` and over HTTP against central's real app,
and a refusal names the user and the status; registering lands in the
registry; node settings and unique names are valid where they are used;
central's services stand on a migrated database with the settings asked
for, and the sender they give a service audits and reaches their live stream.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from support.api import LoginFailedError, login, register, token
from support.central import central_services, sender
from support.nodes import node_config
from support.topics import unique_device, unique_prefix
from support.waiting import WaitTimeoutError, wait_until

from central.app import create_app
from central.db import make_engine, migrate
from central.errors import ConflictError
from central.fleet import registry
from central.messaging.outbound import Outbound
from central.models import Operator
from central.operators.auth import create_operator
from edge.clock import ManualClock
from edge.protocol import topics
from kiosk.settings import KioskSettings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import sqlalchemy as sa

    from central.api.deps import Services

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


def test_wait_until_returns_the_first_truthy_value() -> None:
    calls = itertools.count()
    assert wait_until(lambda: [n] if (n := next(calls)) >= 3 else [], 5) == [3]


def test_wait_until_names_what_it_waited_for_and_the_last_value() -> None:
    with pytest.raises(WaitTimeoutError) as caught:
        wait_until(lambda: 0, 0.2, "the broker to answer", interval=0.05)
    assert (
        str(caught.value)
        == "expected the broker to answer within 0.2 s, got 0 at the end"
    )
    assert isinstance(caught.value, AssertionError)  # a failure, not an error

    def nobody_home() -> None:
        return None

    with pytest.raises(WaitTimeoutError, match="expected nobody_home within"):
        wait_until(nobody_home, 0.1)


def test_wait_until_refuses_a_timeout_that_cannot_wait() -> None:
    with pytest.raises(ValueError, match="expected timeout and interval > 0, got 0"):
        wait_until(lambda: True, 0)
    with pytest.raises(ValueError, match="got 1 and -1"):
        wait_until(lambda: True, 1, interval=-1)


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[sa.Engine]:
    made = make_engine(sqlite_url)
    migrate(made)
    yield made
    made.dispose()


@pytest.fixture
def services(sqlite_url: str, tmp_path: Path) -> Iterator[Services]:
    built = central_services(sqlite_url, tmp_path / "c", clock=ManualClock(NOW))
    with Session(built.engine) as session:
        create_operator(
            session, username="desk", password=PASSWORD, role="complaints", now=NOW
        )
    yield built
    built.engine.dispose()


@pytest.fixture
def app(services: Services) -> Any:
    return create_app(services)


def test_central_services_stand_on_a_migrated_database(
    services: Services, tmp_path: Path
) -> None:
    assert services.settings.data_dir == tmp_path / "c"
    assert services.clock.now() == NOW
    with Session(services.engine) as session:
        assert [o.username for o in session.exec(select(Operator))] == ["desk"]
    assert (services.link, services.police, services.plates) == (None, None, None)
    url = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    other = central_services(
        url, tmp_path, checkpoint_every=3, settings={"open311_api_keys": ["k"]}
    )
    try:
        assert other.settings.open311_api_keys == ["k"]
        assert other.audit.checkpoint_every == 3
        assert other.settings.database_url == url
    finally:
        other.engine.dispose()


def test_the_sender_audits_and_reaches_the_services_live_stream(
    services: Services,
) -> None:
    out = Outbound(
        live=[{"type": "complaint", "code": "A1"}],
        audit=[{"actor": "desk", "action": "complaint.accept", "target": "A1"}],
    )

    async def deliver_and_listen() -> dict[str, Any]:
        queue = services.broadcaster.subscribe()
        sender(services).deliver(out)  # no link here: no command to send
        return await asyncio.wait_for(queue.get(), 5)

    assert asyncio.run(deliver_and_listen()) == {"type": "complaint", "code": "A1"}
    (record,) = services.audit.search(action="complaint.accept")
    assert (record.actor, record.target) == ("desk", "A1")
    assert services.audit.verify() is None


def test_login_through_a_test_client_and_over_http(app: Any, serve_app: Any) -> None:
    with TestClient(app) as client:
        header = login(client, "desk", PASSWORD)
        assert re.fullmatch(r"Bearer [\w-]+\.[\w-]+\.[\w-]+", header["Authorization"])
        me = client.get("/api/v1/auth/me", headers=header)
        assert (me.status_code, me.json()["username"]) == (200, "desk")
        with pytest.raises(LoginFailedError, match="'desk', got 401"):
            login(client, "desk", "wrong")
    base = serve_app(app)
    assert token(base, "desk", PASSWORD).count(".") == 2
    with pytest.raises(
        LoginFailedError, match="expected 200 logging in as 'nobody', got 401"
    ):
        token(base + "/", "nobody", PASSWORD)


def test_register_puts_devices_in_the_registry(engine: sa.Engine) -> None:
    register(engine, "kiosk-1", "kiosk-2", kind="kiosk", site="rjw", now=NOW)
    register(engine, "sim-1")
    with Session(engine) as session:
        rows, total = registry.search(session)
        assert total == 3
        assert {(d.id, d.kind, d.site) for d in rows} == {
            ("kiosk-1", "kiosk", "rjw"),
            ("kiosk-2", "kiosk", "rjw"),
            ("sim-1", "sim", ""),
        }
    with pytest.raises(ConflictError):
        register(engine, "sim-1")


def test_node_config_fills_in_what_every_node_repeats(tmp_path: Path) -> None:
    settings = node_config(
        KioskSettings,
        device_id="kiosk-7",
        kind="kiosk",
        tmp_path=tmp_path,
        broker_port=18830,
        idle_s=30,
    )
    assert isinstance(settings, KioskSettings)
    assert (settings.data_dir, settings.broker_port, settings.idle_s) == (
        tmp_path / "kiosk-7",
        18830,
        30,
    )
    with pytest.raises(ValueError, match="idle_s"):
        node_config(
            KioskSettings, device_id="k", kind="kiosk", tmp_path=tmp_path, idle_s=1
        )


def test_unique_names_never_repeat_and_are_valid_where_used() -> None:
    prefixes = {unique_prefix("bl-test") for _ in range(200)}
    assert len(prefixes) == 200
    assert all(re.fullmatch(r"bl-test-[0-9a-f]{12}/", p) for p in prefixes)
    device = unique_device("cam")
    topics.check_device_id(device)
    assert topics.state(device).startswith(f"bl/v1/{device}/")
    with pytest.raises(ValueError, match="got 'a/b'"):
        unique_prefix("a/b")
