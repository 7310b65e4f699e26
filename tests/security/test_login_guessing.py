"""Login resists guessing: back-off per account and address, constant time.

The attacker here guesses passwords against one account, sprays usernames
from one address, and times answers to learn which usernames exist. The
clock is a :class:`ManualClock`, so lockouts end when the test says.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from authworld import PASSWORD, World, build
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from central.models import LoginThrottle
from central.operators import throttle

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import httpx2


@pytest.fixture
def world(sqlite_url: str, tmp_path: Path) -> Iterator[World]:
    w = build(sqlite_url, tmp_path)
    with w.client:
        yield w
    w.services.engine.dispose()


def _try(client: TestClient, user: str, password: str) -> httpx2.Response:
    return client.post(
        "/api/v1/auth/token", data={"username": user, "password": password}
    )


def test_core_backs_off_doubling_up_to_the_cap() -> None:
    policy = throttle.ThrottlePolicy(
        free=2, base_lock=timedelta(seconds=10), max_lock=timedelta(seconds=35)
    )
    t0 = datetime(2026, 12, 5, tzinfo=UTC)
    state, locked = throttle.on_failure(None, t0, policy)
    state, locked = throttle.on_failure(state, t0, policy)
    assert not locked
    assert throttle.retry_after(state, t0) == 0
    state, locked = throttle.on_failure(state, t0, policy)
    assert locked
    assert throttle.retry_after(state, t0) == 10
    waits = []
    now = t0
    for _ in range(4):
        assert state.locked_until is not None
        now = state.locked_until + timedelta(seconds=1)
        state, locked = throttle.on_failure(state, now, policy)
        assert locked
        waits.append(throttle.retry_after(state, now))
    assert waits == [20, 35, 35, 35]
    # A quiet window after the last lock forgets it all.
    assert state.locked_until is not None
    later = state.locked_until + policy.window
    state, locked = throttle.on_failure(state, later, policy)
    assert (state.failures, state.lockouts, locked) == (1, 0, False)


def test_core_refuses_a_policy_that_never_locks() -> None:
    with pytest.raises(ValueError, match="free failure"):
        throttle.ThrottlePolicy(free=0)


def test_account_locks_with_retry_after_and_backs_off(world: World) -> None:
    world.add("li", "technician")
    free = throttle.ACCOUNT_POLICY.free
    for _ in range(free + 1):
        assert _try(world.client, "li", "wrong password!").status_code == 401
    refused = _try(world.client, "li", PASSWORD)  # even the right one
    assert refused.status_code == 429
    first = int(refused.headers["Retry-After"])
    assert first == throttle.ACCOUNT_POLICY.base_lock.total_seconds()
    # Another address gets no further with this account.
    elsewhere = TestClient(world.client.app, client=("10.9.8.7", 40000))
    assert _try(elsewhere, "li", PASSWORD).status_code == 429
    world.clock.advance(first + 1)
    assert _try(world.client, "li", "still wrong!!").status_code == 401
    again = _try(world.client, "li", PASSWORD)
    assert again.status_code == 429
    assert int(again.headers["Retry-After"]) == 2 * first
    world.clock.advance(2 * first + 1)
    assert _try(world.client, "li", PASSWORD).status_code == 200
    # Success clears the account's counter: one slip later is free again.
    assert _try(world.client, "li", "wrong password!").status_code == 401
    assert _try(world.client, "li", PASSWORD).status_code == 200


def test_one_address_spraying_usernames_is_locked(world: World) -> None:
    world.add("wang", "traffic")
    spray = TestClient(world.client.app, client=("203.0.113.9", 41000))
    for i in range(throttle.ADDRESS_POLICY.free + 1):
        assert _try(spray, f"guess{i}", "password1234").status_code == 401
    blocked = _try(spray, "wang", PASSWORD)
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    # Others, from their own address, are not held up.
    assert _try(world.client, "wang", PASSWORD).status_code == 200


def test_audit_chain_does_not_grow_per_anonymous_failure(world: World) -> None:
    before = world.audit_count()
    attempts = 0
    for wave in range(4):
        spray = TestClient(world.client.app, client=(f"198.51.100.{wave}", 42000))
        for i in range(30):
            _try(spray, f"nobody{i % 3}", "password1234")
            attempts += 1
        world.clock.advance(60)
    grown = world.audit_count() - before
    assert attempts == 120
    assert 1 <= grown <= 12  # lockouts only, not one per failure
    actions = {r.action for r in world.services.audit.search(limit=50)}
    assert actions <= {"login.locked", "operator.create"}
    metrics = world.services.metrics.render().decode()
    assert 'baling_login_failures_total{reason="credentials"}' in metrics
    assert 'baling_login_failures_total{reason="throttled"}' in metrics
    assert "baling_login_lockouts_total" in metrics
    # The throttle table keeps only what the window still needs.
    world.clock.advance(3600)
    fresh = TestClient(world.client.app, client=("192.0.2.1", 43000))
    _try(fresh, "nobody", "password1234")
    with Session(world.services.engine) as s:
        keys = {row.key for row in s.exec(select(LoginThrottle)).all()}
    assert keys == {"user:nobody", "addr:192.0.2.1"}


def test_unknown_and_known_users_answer_in_the_same_time(world: World) -> None:
    world.add("zhao", "police")

    def median(user: str, address: str) -> float:
        client = TestClient(world.client.app, client=(address, 44000))
        times = []
        for _ in range(throttle.ACCOUNT_POLICY.free):
            t0 = time.perf_counter()
            r = _try(client, user, "not the password")
            times.append(time.perf_counter() - t0)
            assert r.status_code == 401
        return statistics.median(times)

    median("warmup", "192.0.2.50")
    known = median("zhao", "192.0.2.51")
    unknown = median("no-such-user", "192.0.2.52")
    ratio = unknown / known
    assert 0.5 < ratio < 2.0, (known, unknown)
