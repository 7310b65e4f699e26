"""The device registry through its public functions, on SQLite and PostgreSQL.

Registering, changing, finding and showing devices, and a device's events
in storage order. The ingest worker that keeps presence current and the
API that calls these are tested elsewhere.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlmodel import Session

from central.db import make_engine, migrate
from central.errors import ConflictError, NotFoundError
from central.fleet import registry
from central.models import Device, Event

if TYPE_CHECKING:
    from collections.abc import Iterator

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    engine = make_engine(db_url)
    migrate(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


def fleet(session: Session) -> None:
    """Five devices over two sites, one online, one drifting."""
    for device_id, kind, site in (
        ("cam-1", "camera", "rjw"),
        ("cam-2", "camera", "xq"),
        ("kiosk-1", "kiosk", "rjw"),
        ("sig-1", "signal_controller", "rjw"),
        ("sim-9", "sim", "xq"),
    ):
        registry.register(session, device_id=device_id, kind=kind, site=site, now=NOW)
    cam = registry.get(session, "cam-1")
    cam.online = True
    cam.desired_version = "a1"
    cam.reported_version = "a1"
    drifting = registry.get(session, "sig-1")
    drifting.desired_version = "b2"
    drifting.reported_version = "b1"
    session.add_all([cam, drifting])
    session.commit()


def test_a_registered_device_is_shown_with_its_facts(session: Session) -> None:
    device = registry.register(
        session,
        device_id="cam-1",
        kind="camera",
        site="rjw",
        groups=["east", "anpr", "east"],
        lat=29.13,
        lon=113.28,
        now=NOW,
    )
    assert device.groups == ["anpr", "east"]  # each once, sorted
    shown = registry.view(registry.get(session, "cam-1"))
    assert shown["id"] == "cam-1"
    assert shown["kind"] == "camera"
    assert (shown["lat"], shown["lon"]) == (29.13, 113.28)
    assert datetime.fromisoformat(shown["created_at"]) == NOW  # in UTC, with offset
    assert shown["last_seen"] is None
    assert shown["drift"] is False
    assert shown["online"] is False


def test_a_taken_id_a_bad_id_and_an_unknown_kind_are_refused(session: Session) -> None:
    registry.register(session, device_id="cam-1", kind="camera", now=NOW)
    with pytest.raises(ConflictError, match="'cam-1' is already registered"):
        registry.register(session, device_id="cam-1", kind="kiosk", now=NOW)
    with pytest.raises(ValueError, match="Cam 1"):
        registry.register(session, device_id="Cam 1", kind="camera", now=NOW)
    with pytest.raises(ValueError, match=r"expected a kind of .*got 'toaster'"):
        registry.register(session, device_id="t-1", kind="toaster", now=NOW)
    assert registry.search(session)[1] == 1  # nothing of the refused was stored


def test_an_unknown_device_is_not_found_by_name(session: Session) -> None:
    with pytest.raises(NotFoundError, match="no device 'ghost-1'"):
        registry.get(session, "ghost-1")
    with pytest.raises(NotFoundError, match="ghost-1"):
        registry.update(session, "ghost-1", {"site": "rjw"})


def test_update_changes_site_groups_and_place_and_nothing_else(
    session: Session,
) -> None:
    registry.register(session, device_id="cam-1", kind="camera", site="rjw", now=NOW)
    changed = registry.update(
        session,
        "cam-1",
        {
            "site": "xq",
            "groups": ["b", "a", "b"],
            "lat": 29.2,
            "lon": None,  # None leaves a field as it was
            "kind": "kiosk",  # not changeable here
            "online": True,
        },
    )
    assert (changed.site, changed.groups, changed.lat) == ("xq", ["a", "b"], 29.2)
    assert (changed.kind, changed.online) == ("camera", False)


def test_search_filters_bounds_and_pages(session: Session) -> None:
    fleet(session)

    def ids(**filters: object) -> tuple[list[str], int]:
        rows, total = registry.search(session, **filters)  # type: ignore[arg-type]
        return [d.id for d in rows], total

    assert ids() == (["cam-1", "cam-2", "kiosk-1", "sig-1", "sim-9"], 5)
    assert ids(kind="camera") == (["cam-1", "cam-2"], 2)
    assert ids(site="rjw") == (["cam-1", "kiosk-1", "sig-1"], 3)
    assert ids(online=True) == (["cam-1"], 1)
    assert ids(online=False)[1] == 4
    assert ids(drift=True) == (["sig-1"], 1)
    assert ids(drift=False)[1] == 4
    assert ids(q="-1") == (["cam-1", "kiosk-1", "sig-1"], 3)
    assert ids(limit=2, offset=1) == (["cam-2", "kiosk-1"], 5)  # total of all pages
    # a district-scoped operator's bounds come before any filter
    assert ids(sites=["xq"]) == (["cam-2", "sim-9"], 2)
    assert ids(sites=["xq"], site="rjw") == ([], 0)
    assert ids(kinds=["kiosk", "signal_controller"], sites=["rjw"]) == (
        ["kiosk-1", "sig-1"],
        2,
    )
    assert ids(kinds=[]) == ([], 0)


def test_a_refused_configuration_is_drift_even_at_the_desired_version(
    session: Session,
) -> None:
    registry.register(session, device_id="cam-1", kind="camera", now=NOW)
    device = registry.get(session, "cam-1")
    device.desired_version = device.reported_version = "c3"
    device.config_status = "refused"
    device.last_seen = NOW + timedelta(minutes=5)
    session.add(device)
    session.commit()
    shown = registry.view(device)
    assert shown["drift"] is True
    assert datetime.fromisoformat(shown["last_seen"]) == NOW + timedelta(minutes=5)
    assert registry.search(session, drift=True)[1] == 1


def test_events_come_in_storage_order_after_a_cursor(session: Session) -> None:
    for device in ("cam-1", "cam-2"):
        registry.register(session, device_id=device, kind="camera", now=NOW)
    for i in range(5):
        for device in ("cam-1", "cam-2"):
            session.add(
                Event(
                    id=str(uuid.uuid4()),
                    device=device,
                    type="plate",
                    ts=NOW + timedelta(seconds=i),
                    received_at=NOW,
                    body={"n": i},
                )
            )
        session.commit()
    mine = registry.events(session, "cam-1")
    assert [e.body["n"] for e in mine] == [0, 1, 2, 3, 4]
    assert {e.device for e in mine} == {"cam-1"}
    after = mine[1].seq
    assert after is not None
    assert [e.body["n"] for e in registry.events(session, "cam-1", after=after)] == [
        2,
        3,
        4,
    ]
    assert [e.body["n"] for e in registry.events(session, "cam-1", limit=2)] == [0, 1]
    assert registry.events(session, "ghost-1") == []


def test_the_registry_row_is_what_the_api_shows(session: Session) -> None:
    registry.register(session, device_id="kiosk-1", kind="kiosk", now=NOW)
    device = session.get(Device, "kiosk-1")
    assert device is not None
    assert set(registry.view(device)) >= {
        "id",
        "kind",
        "site",
        "groups",
        "online",
        "last_seen",
        "desired_version",
        "reported_version",
        "config_status",
        "created_at",
        "drift",
    }
