"""Operators managed by admins through the API: every change audited, none unguarded.

Creates, disables, re-roles, re-scopes and resets operators as an admin;
plays a non-admin who tries each of those; and tries to lock the county
out by disabling or demoting its last active admin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from authworld import PASSWORD, World, build

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    w = build(db_url, tmp_path)
    with w.client:
        yield w
    w.services.engine.dispose()


def _audit(world: World, action: str) -> list[tuple[str, str, dict[str, object]]]:
    return [
        (r.actor, r.target, r.detail)
        for r in world.services.audit.search(action=action, limit=100)
    ]


def test_admin_creates_with_a_one_time_password_shown_once(world: World) -> None:
    admin = world.login("root")
    r = world.client.post(
        "/api/v1/operators",
        json={"username": "li", "role": "traffic", "scope": ["xinqiang"]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    one_time = body["one_time_password"]
    assert len(one_time) >= 12
    assert (body["role"], body["scope"], body["active"]) == (
        "traffic",
        ["xinqiang"],
        True,
    )
    listed = world.client.get("/api/v1/operators", headers=admin).json()
    li = next(o for o in listed if o["username"] == "li")
    assert li["one_time_password"] is None  # never shown again
    assert "password_hash" not in li
    world.login("li", one_time)
    assert _audit(world, "operator.create") == [
        ("root", "li", {"role": "traffic", "scope": ["xinqiang"]})
    ]
    # The given password is never audited.
    assert one_time not in str(world.services.audit.search(limit=100))


def test_admin_sets_a_given_password_that_meets_the_policy(world: World) -> None:
    admin = world.login("root")
    for weak, why in (
        ("short", "12 to 256"),
        ("aaaaaaaaaaaaaaaa", "different characters"),
        ("wang-secret-2026", "username"),
    ):
        r = world.client.post(
            "/api/v1/operators",
            json={"username": "wang", "role": "police", "password": weak},
            headers=admin,
        )
        assert r.status_code == 422, weak
        assert why in r.text
    r = world.client.post(
        "/api/v1/operators",
        json={"username": "wang", "role": "police", "password": PASSWORD},
        headers=admin,
    )
    assert r.status_code == 201
    assert r.json()["one_time_password"] is None
    dup = world.client.post(
        "/api/v1/operators",
        json={"username": "wang", "role": "police", "password": PASSWORD},
        headers=admin,
    )
    assert dup.status_code == 409
    unknown_role = world.client.post(
        "/api/v1/operators",
        json={"username": "zhao", "role": "mayor", "password": PASSWORD},
        headers=admin,
    )
    assert unknown_role.status_code == 422
    assert "mayor" in unknown_role.text


def test_disable_enable_role_scope_and_reset_are_audited(world: World) -> None:
    world.add("chen", "technician", ["gangkou"])
    admin = world.login("root")
    url = "/api/v1/operators/chen"
    assert (
        world.client.patch(url, json={"active": False}, headers=admin).json()["active"]
        is False
    )
    assert (
        world.client.post(
            "/api/v1/auth/token", data={"username": "chen", "password": PASSWORD}
        ).status_code
        == 401
    )
    assert world.client.patch(url, json={"active": True}, headers=admin).json()[
        "active"
    ]
    changed = world.client.patch(
        url, json={"role": "traffic", "scope": ["gangkou", "boxiang"]}, headers=admin
    ).json()
    assert (changed["role"], changed["scope"]) == ("traffic", ["gangkou", "boxiang"])
    assert world.client.patch(url, json={"scope": []}, headers=admin).status_code == 422
    bad_site = world.client.patch(url, json={"scope": ["../x"]}, headers=admin)
    assert bad_site.status_code == 422
    reset = world.client.post(f"{url}/password", json={}, headers=admin).json()
    world.login("chen", reset["one_time_password"])
    given = world.client.post(
        f"{url}/password", json={"password": "a new long passphrase"}, headers=admin
    )
    assert given.status_code == 200
    assert given.json()["one_time_password"] is None
    world.login("chen", "a new long passphrase")
    assert _audit(world, "operator.update") == [
        (
            "root",
            "chen",
            {
                "role": ["technician", "traffic"],
                "scope": [["gangkou"], ["gangkou", "boxiang"]],
            },
        ),
        ("root", "chen", {"active": [False, True]}),
        ("root", "chen", {"active": [True, False]}),
    ]
    assert _audit(world, "operator.password") == [
        ("root", "chen", {}),
        ("root", "chen", {}),
    ]
    assert world.services.audit.verify() is None
    missing = world.client.patch(
        "/api/v1/operators/nobody", json={"active": False}, headers=admin
    )
    assert missing.status_code == 404


def test_the_last_active_admin_cannot_be_disabled_or_demoted(world: World) -> None:
    admin = world.login("root")
    for change in ({"active": False}, {"role": "traffic"}):
        r = world.client.patch("/api/v1/operators/root", json=change, headers=admin)
        assert r.status_code == 409, change
        assert "last" in r.json()["detail"]
    world.add("deputy", "admin")
    world.client.patch(
        "/api/v1/operators/deputy", json={"active": False}, headers=admin
    )
    # A disabled admin does not count.
    r = world.client.patch(
        "/api/v1/operators/root", json={"role": "police"}, headers=admin
    )
    assert r.status_code == 409
    world.client.patch("/api/v1/operators/deputy", json={"active": True}, headers=admin)
    demoted = world.client.patch(
        "/api/v1/operators/root", json={"role": "police"}, headers=admin
    )
    assert demoted.status_code == 200
    deputy = world.login("deputy")
    last = world.client.patch(
        "/api/v1/operators/deputy", json={"active": False}, headers=deputy
    )
    assert last.status_code == 409


@pytest.mark.parametrize("role", ["technician", "police", "traffic", "complaints"])
def test_non_admins_cannot_manage_operators(world: World, role: str) -> None:
    world.add("mallory", role)
    world.add("victim", "traffic")
    m = world.login("mallory")
    attempts = [
        ("GET", "/api/v1/operators", None),
        ("POST", "/api/v1/operators", {"username": "x2", "role": "admin"}),
        ("PATCH", "/api/v1/operators/mallory", {"role": "admin"}),
        ("PATCH", "/api/v1/operators/victim", {"active": False}),
        ("POST", "/api/v1/operators/victim/password", {}),
        ("POST", "/api/v1/operators/root/password", {"password": PASSWORD + "!"}),
    ]
    for method, path, body in attempts:
        r = world.client.request(method, path, json=body, headers=m)
        assert r.status_code == 403, (method, path)
    assert world.client.request("GET", "/api/v1/operators").status_code == 401
    world.login("victim")
    world.login("root")
    assert _audit(world, "operator.update") == []
    assert _audit(world, "operator.password") == []


def test_own_password_change_needs_the_current_one(world: World) -> None:
    world.add("sun", "complaints")
    sun = world.login("sun")
    wrong = world.client.post(
        "/api/v1/auth/password",
        json={"current": "not it at all", "new": "another good phrase"},
        headers=sun,
    )
    assert wrong.status_code == 400
    ok = world.client.post(
        "/api/v1/auth/password",
        json={"current": PASSWORD, "new": "another good phrase"},
        headers=sun,
    )
    assert ok.status_code == 204
    assert world.client.get("/api/v1/auth/me", headers=sun).status_code == 401
    world.login("sun", "another good phrase")
