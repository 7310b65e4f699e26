"""GET /api/v1/kinds: the console's kind pickers read the one registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.api import login
from support.central import central_services

from central.app import create_app
from central.operators.auth import create_operator
from edge.protocol.kinds import REGISTRY

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PASSWORD = "correct horse battery"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    svc = central_services(url, tmp_path, checkpoint_every=3)
    with Session(svc.engine) as session:
        for role in ("technician", "department"):
            create_operator(
                session,
                username=role,
                password=PASSWORD,
                role=role,
                now=svc.clock.now(),
            )
    with TestClient(create_app(svc)) as c:
        yield c
    svc.engine.dispose()


def test_every_registered_kind_is_listed_with_label_and_schema(
    client: TestClient,
) -> None:
    answer = client.get("/api/v1/kinds", headers=login(client, "technician", PASSWORD))
    assert answer.status_code == 200
    kinds = answer.json()["kinds"]
    assert [k["code"] for k in kinds] == list(REGISTRY)
    assert {k["code"]: k["label"] for k in kinds}["signal_controller"] == "信号机柜"
    camera = next(k for k in kinds if k["code"] == "camera")
    assert camera["config_schema"]["properties"]["fps"]["maximum"] == 30
    assert camera["config_schema"]["additionalProperties"] is False


def test_the_kinds_need_a_login_and_a_device_reader(client: TestClient) -> None:
    assert client.get("/api/v1/kinds").status_code == 401
    desk = login(client, "department", PASSWORD)
    assert client.get("/api/v1/kinds", headers=desk).status_code == 403
