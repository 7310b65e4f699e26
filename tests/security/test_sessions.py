"""Sessions end: disabled, re-roled and logged-out operators are refused at once.

Each test plays the attacker who kept a token (or a refresh cookie, or a
stream ticket) and tries it after the event that should have ended it. The
app runs on a real database (SQLite and PostgreSQL) with a clock the test
moves.
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING

import pytest
from authworld import PASSWORD, World, build
from fastapi.testclient import TestClient
from sqlmodel import Session

from central.models import Operator
from central.operators.auth import read_token
from central.operators.sessions import REUSE_GRACE, TICKET_TTL, check_principal

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    w = build(db_url, tmp_path)
    with w.client:
        yield w
    w.services.engine.dispose()


def _admin(world: World) -> dict[str, str]:
    return world.login("root")


def test_disabled_operators_token_is_refused_on_the_next_request(world: World) -> None:
    world.add("li", "technician")
    browser = TestClient(world.client.app)  # li's own cookie jar
    li = world.login("li", client=browser)
    assert browser.get("/api/v1/devices", headers=li).status_code == 200
    r = world.client.patch(
        "/api/v1/operators/li", json={"active": False}, headers=_admin(world)
    )
    assert r.status_code == 200, r.text
    refused = browser.get("/api/v1/devices", headers=li)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    # Nor can the kept refresh cookie mint a new token, nor a new login work.
    assert browser.cookies.get("baling_refresh")
    assert browser.post("/api/v1/auth/refresh").status_code == 401
    bad = browser.post(
        "/api/v1/auth/token", data={"username": "li", "password": PASSWORD}
    )
    assert bad.status_code == 401


def test_role_change_takes_effect_at_once(world: World) -> None:
    world.add("wang", "admin")
    wang = world.login("wang")
    assert world.client.get("/api/v1/operators", headers=wang).status_code == 200
    r = world.client.patch(
        "/api/v1/operators/wang", json={"role": "traffic"}, headers=_admin(world)
    )
    assert r.status_code == 200
    # The old admin token no longer passes at all, as admin or otherwise.
    assert world.client.get("/api/v1/operators", headers=wang).status_code == 401
    again = world.login("wang")
    assert world.client.get("/api/v1/operators", headers=again).status_code == 403
    assert (
        world.client.get("/api/v1/auth/me", headers=again).json()["role"] == "traffic"
    )


def test_scope_change_and_password_reset_end_sessions(world: World) -> None:
    world.add("zhao", "traffic", ["xinqiang"])
    admin = _admin(world)
    zhao = world.login("zhao")
    world.client.patch(
        "/api/v1/operators/zhao", json={"scope": ["gangkou"]}, headers=admin
    )
    assert world.client.get("/api/v1/auth/me", headers=zhao).status_code == 401
    zhao = world.login("zhao")
    world.client.post("/api/v1/operators/zhao/password", json={}, headers=admin)
    assert world.client.get("/api/v1/auth/me", headers=zhao).status_code == 401


def test_logout_revokes_the_session(world: World) -> None:
    world.add("chen", "police")
    chen = world.login("chen")
    other = TestClient(world.client.app)
    other_session = world.login("chen", client=other)
    assert world.client.post("/api/v1/auth/logout", headers=chen).status_code == 204
    assert world.client.get("/api/v1/auth/me", headers=chen).status_code == 401
    assert world.client.post("/api/v1/auth/refresh").status_code == 401
    # Only that session: the same operator's other login goes on.
    assert world.client.get("/api/v1/auth/me", headers=other_session).status_code == 200


def test_access_token_is_short_and_refresh_rotates(world: World) -> None:
    world.add("sun", "complaints")
    sun = world.login("sun")
    first = world.client.cookies.get("baling_refresh")
    assert first
    world.clock.advance(world.services.settings.jwt_ttl_s + 1)
    assert world.client.get("/api/v1/auth/me", headers=sun).status_code == 401
    r = world.client.post("/api/v1/auth/refresh")
    assert r.status_code == 200, r.text
    fresh = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert world.client.get("/api/v1/auth/me", headers=fresh).status_code == 200
    second = world.client.cookies.get("baling_refresh")
    assert second
    assert second != first


def test_reuse_of_a_used_refresh_token_revokes_the_family(world: World) -> None:
    world.add("zhou", "traffic")
    world.login("zhou")
    stolen = world.client.cookies.get("baling_refresh")
    assert stolen
    r = world.client.post("/api/v1/auth/refresh")
    assert r.status_code == 200
    victim = {"Authorization": f"Bearer {r.json()['access_token']}"}
    world.clock.advance(REUSE_GRACE.total_seconds() + 1)
    thief = TestClient(world.client.app)
    thief.cookies.set("baling_refresh", stolen, path="/api/v1/auth")
    refused = thief.post("/api/v1/auth/refresh")
    assert refused.status_code == 401
    assert "used before" in refused.json()["detail"]
    # The whole family is gone: the victim's current token and cookie too.
    assert world.client.get("/api/v1/auth/me", headers=victim).status_code == 401
    assert world.client.post("/api/v1/auth/refresh").status_code == 401
    actions = [a.action for a in world.services.audit.search(limit=10)]
    assert "session.refresh_reuse" in actions


def test_token_in_the_url_is_refused(world: World) -> None:
    world.add("qian", "technician")
    header = world.login("qian")
    token = header["Authorization"].removeprefix("Bearer ")
    for path in ("/api/v1/devices", "/api/v1/auth/me", "/api/v1/policy"):
        r = world.client.get(f"{path}?token={token}")
        assert r.status_code == 401, path
    assert world.client.get("/api/v1/devices", headers=header).status_code == 200


def test_stream_ticket_works_once_and_expires(world: World) -> None:
    world.add("ma", "police")
    ma = world.login("ma")
    token = ma["Authorization"].removeprefix("Bearer ")
    assert world.client.get(f"/api/v1/stream?token={token}").status_code == 422
    assert world.client.get("/api/v1/stream?ticket=forged").status_code == 401
    ticket = world.client.post("/api/v1/stream/ticket", headers=ma).json()["ticket"]
    with world.client.stream("GET", f"/api/v1/stream?ticket={ticket}") as events:
        assert events.status_code == 200
        assert events.headers["content-type"].startswith("text/event-stream")
        assert next(events.iter_lines()) == "retry: 2000"
    again = world.client.get(f"/api/v1/stream?ticket={ticket}")
    assert again.status_code == 401
    late = world.client.post("/api/v1/stream/ticket", headers=ma).json()["ticket"]
    world.clock.advance(TICKET_TTL.total_seconds() + 1)
    assert world.client.get(f"/api/v1/stream?ticket={late}").status_code == 401
    # A ticket of a session that ended since it was issued opens nothing.
    ma = world.login("ma")
    kept = world.client.post("/api/v1/stream/ticket", headers=ma).json()["ticket"]
    world.client.post("/api/v1/auth/logout", headers=ma)
    assert world.client.get(f"/api/v1/stream?ticket={kept}").status_code == 401
    assert world.client.post("/api/v1/stream/ticket").status_code == 401


def test_session_check_costs_no_more_than_a_primary_key_read(world: World) -> None:
    """The per-request check against a plain ORM read of the operator by key."""
    header = world.login("root")
    claimed = read_token(
        header["Authorization"].removeprefix("Bearer "),
        secret=world.services.settings.jwt_secret,
        now=world.clock.now(),
    )
    engine = world.services.engine

    def check() -> None:
        check_principal(engine, claimed, now=world.clock.now())

    def pk_read() -> None:
        with Session(engine) as s:
            assert s.get(Operator, "root") is not None

    def median(fn: object, n: int = 300) -> float:
        assert callable(fn)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    median(check, 30)
    median(pk_read, 30)
    ours, theirs = median(check), median(pk_read)
    assert ours <= theirs * 1.5, (ours, theirs)


def test_refresh_cookie_is_out_of_reach_of_scripts_and_other_sites(
    world: World,
) -> None:
    world.add("he", "police")
    r = world.client.post(
        "/api/v1/auth/token", data={"username": "he", "password": PASSWORD}
    )
    cookie = r.headers["set-cookie"].lower()
    for attribute in ("httponly", "samesite=strict", "path=/api/v1/auth"):
        assert attribute in cookie
    refresh = r.cookies.get("baling_refresh")
    assert refresh
    assert refresh not in r.text  # never in the body
    # Over HTTPS the cookie is Secure as well.
    secure = TestClient(world.client.app, base_url="https://testserver")
    r = secure.post("/api/v1/auth/token", data={"username": "he", "password": PASSWORD})
    assert "secure" in r.headers["set-cookie"].lower()
