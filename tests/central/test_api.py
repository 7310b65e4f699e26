"""The REST API through TestClient, on SQLite and PostgreSQL, no broker."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.api import login
from support.central import central_services

from central.app import create_app
from central.operators.auth import create_operator
from central.settings import CentralSettings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from central.api.deps import Services

PASSWORD = "correct horse battery"


@pytest.fixture
def services(db_url: str, tmp_path: Path) -> Iterator[Services]:
    svc = central_services(db_url, tmp_path, checkpoint_every=3)
    with Session(svc.engine) as session:
        for role in ("admin", "technician", "police"):
            create_operator(
                session,
                username=role,
                password=PASSWORD,
                role=role,
                now=svc.clock.now(),
            )
    yield svc
    svc.engine.dispose()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as c:
        yield c


def test_login_and_roles(client: TestClient) -> None:
    bad = client.post(
        "/api/v1/auth/token", data={"username": "admin", "password": "nope"}
    )
    assert bad.status_code == 401
    assert client.get("/api/v1/devices").status_code == 401
    assert (
        client.get(
            "/api/v1/devices", headers={"Authorization": "Bearer junk"}
        ).status_code
        == 401
    )
    police = login(client, "police", PASSWORD)
    assert client.get("/api/v1/auth/me", headers=police).json() == {
        "username": "police",
        "role": "police",
    }
    denied = client.post(
        "/api/v1/devices", json={"id": "cam-1", "kind": "camera"}, headers=police
    )
    assert denied.status_code == 403
    assert "technician" in denied.json()["detail"]


def test_operators_are_managed_by_admins(client: TestClient) -> None:
    admin = login(client, "admin", PASSWORD)
    r = client.post(
        "/api/v1/operators",
        headers=admin,
        json={"username": "li.wei", "password": PASSWORD, "role": "traffic"},
    )
    assert r.status_code == 201
    again = client.post(
        "/api/v1/operators",
        headers=admin,
        json={"username": "li.wei", "password": PASSWORD, "role": "traffic"},
    )
    assert again.status_code == 409
    wrong_role = client.post(
        "/api/v1/operators",
        headers=admin,
        json={"username": "x1", "password": PASSWORD, "role": "king"},
    )
    assert wrong_role.status_code == 422
    assert "role" in wrong_role.text
    names = {
        o["username"] for o in client.get("/api/v1/operators", headers=admin).json()
    }
    assert "li.wei" in names
    assert (
        client.get(
            "/api/v1/operators", headers=login(client, "police", PASSWORD)
        ).status_code
        == 403
    )


def test_register_list_filter_paginate(client: TestClient) -> None:
    tech = login(client, "technician", PASSWORD)
    for i in range(12):
        kind = "camera" if i % 3 else "kiosk"
        r = client.post(
            "/api/v1/devices",
            headers=tech,
            json={
                "id": f"dev-{i:02d}",
                "kind": kind,
                "site": "rjw",
                "groups": ["b", "a", "a"],
            },
        )
        assert r.status_code == 201, r.text
    assert r.json()["groups"] == ["a", "b"]
    dup = client.post(
        "/api/v1/devices", headers=tech, json={"id": "dev-00", "kind": "kiosk"}
    )
    assert dup.status_code == 409
    bad = client.post(
        "/api/v1/devices", headers=tech, json={"id": "dev-x", "kind": "toaster"}
    )
    assert bad.status_code == 422
    assert "toaster" in bad.text
    page = client.get(
        "/api/v1/devices?kind=camera&limit=5&offset=5", headers=tech
    ).json()
    assert page["total"] == 8
    assert [d["id"] for d in page["items"]] == ["dev-08", "dev-10", "dev-11"]
    assert client.get("/api/v1/devices?q=dev-1", headers=tech).json()["total"] == 2
    assert client.get("/api/v1/devices?online=true", headers=tech).json()["total"] == 0
    moved = client.patch("/api/v1/devices/dev-01", headers=tech, json={"site": "xjz"})
    assert moved.json()["site"] == "xjz"
    assert client.get("/api/v1/devices/nope", headers=tech).status_code == 404


def test_policy_layers_versions_and_refusals(client: TestClient) -> None:
    tech = login(client, "technician", PASSWORD)
    client.post("/api/v1/devices", headers=tech, json={"id": "sim-1", "kind": "sim"})
    r1 = client.put("/api/v1/policy/fleet/*", headers=tech, json={"heartbeat_s": 20})
    r2 = client.put("/api/v1/policy/fleet/*", headers=tech, json={"heartbeat_s": 25})
    assert (r1.json()["version"], r2.json()["version"]) == (1, 2)
    refused = client.put(
        "/api/v1/policy/device/sim-1", headers=tech, json={"event_interval_s": -3}
    )
    assert refused.status_code == 422
    assert "sim-1" in refused.json()["detail"]
    assert "event_interval_s" in refused.json()["detail"]
    unknown = client.put("/api/v1/policy/fleet/*", headers=tech, json={"colour": "red"})
    assert unknown.status_code == 422
    cfg = client.get("/api/v1/devices/sim-1/config", headers=tech).json()
    assert cfg["desired"]["values"]["heartbeat_s"] == 25
    assert cfg["desired"]["sources"] == ["fleet/*@2"]
    history = client.get("/api/v1/policy/fleet/*/history", headers=tech).json()
    assert [h["version"] for h in history] == [2, 1]
    assert history[0]["author"] == "technician"
    layers = client.get("/api/v1/policy", headers=tech).json()
    assert layers == [
        {"scope": "fleet", "target": "*", "version": 2, "values": {"heartbeat_s": 25}}
    ]


def test_openapi_metrics_console_health(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/v1/devices" in spec["paths"]
    assert "/api/v1/auth/token" in spec["paths"]
    assert client.get("/metrics").status_code == 401  # not public
    assert (
        client.get("/metrics", headers=login(client, "police", PASSWORD)).status_code
        == 403
    )
    metrics = client.get("/metrics", headers=login(client, "admin", PASSWORD))
    assert (
        "baling_ingest_rejected_total" in metrics.text
        or "baling_ingest" in metrics.text
    )
    page = client.get("/console/")
    assert page.status_code == 200
    assert "巴陵" in page.text
    assert "cdn" not in page.text.lower()
    assert client.get("/", follow_redirects=False).status_code == 307
    assert client.get("/healthz").json() == {"ok": True, "broker": False}


def test_commands_need_a_broker_link(client: TestClient) -> None:
    tech = login(client, "technician", PASSWORD)
    client.post("/api/v1/devices", headers=tech, json={"id": "sim-1", "kind": "sim"})
    r = client.post("/api/v1/devices/sim-1/commands/ping", headers=tech, json={})
    assert r.status_code == 503


def test_weak_secret_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        CentralSettings(database_url="sqlite://", jwt_secret="short", data_dir=tmp_path)
    with pytest.raises(ValueError, match="default"):
        CentralSettings(
            database_url="sqlite://",
            jwt_secret="changeme" + " " * 30,
            data_dir=tmp_path,
        )


def test_operator_actions_are_audited(client: TestClient) -> None:
    admin, tech = (
        login(client, "admin", PASSWORD),
        login(client, "technician", PASSWORD),
    )
    client.post(
        "/api/v1/auth/token", data={"username": "admin", "password": "wrong pw!"}
    )
    client.post("/api/v1/devices", headers=tech, json={"id": "sim-1", "kind": "sim"})
    client.put("/api/v1/policy/fleet/*", headers=tech, json={"heartbeat_s": 20})
    client.patch("/api/v1/devices/sim-1", headers=tech, json={"site": "rjw"})
    records = client.get("/api/v1/audit", headers=admin).json()
    assert [r["action"] for r in records] == [
        "device.update",
        "policy.put",
        "device.register",
    ]  # one failed login is counted, not audited (tests/security/test_login_guessing)
    assert records[0]["actor"] == "technician"
    only = client.get("/api/v1/audit?action=policy.put", headers=admin).json()
    assert [r["target"] for r in only] == ["fleet/*"]
    assert client.get("/api/v1/audit/verify", headers=admin).json() == {"ok": True}
    assert client.get("/api/v1/audit", headers=tech).status_code == 403


def test_district_scope_limits_what_an_operator_may_touch(
    client: TestClient, services: Services
) -> None:
    with Session(services.engine) as session:
        create_operator(
            session,
            username="xq.tech",
            password=PASSWORD,
            role="technician",
            now=services.clock.now(),
            scope=["xinqiang"],
        )
    tech = login(client, "xq.tech", PASSWORD)
    ok = client.post(
        "/api/v1/devices",
        headers=tech,
        json={"id": "sim-xq", "kind": "sim", "site": "xinqiang"},
    )
    assert ok.status_code == 201
    other = client.post(
        "/api/v1/devices",
        headers=tech,
        json={"id": "sim-lk", "kind": "sim", "site": "lukou"},
    )
    assert other.status_code == 403
    assert "scope ['xinqiang']" in other.json()["detail"]
    assert (
        client.put(
            "/api/v1/policy/site/xinqiang", headers=tech, json={"heartbeat_s": 20}
        ).status_code
        == 200
    )
    assert (
        client.put(
            "/api/v1/policy/device/sim-xq", headers=tech, json={"heartbeat_s": 25}
        ).status_code
        == 200
    )
    assert (
        client.put(
            "/api/v1/policy/fleet/*", headers=tech, json={"heartbeat_s": 20}
        ).status_code
        == 403
    )
    moved = client.patch("/api/v1/devices/sim-xq", headers=tech, json={"site": "lukou"})
    assert moved.status_code == 403
    admin = login(client, "admin", PASSWORD)
    scoped = client.post(
        "/api/v1/operators",
        headers=admin,
        json={
            "username": "lk.traffic",
            "password": PASSWORD,
            "role": "traffic",
            "scope": ["lukou"],
        },
    )
    assert scoped.json()["scope"] == ["lukou"]
