"""Which errors are 422 and which are 500.

Central's refusals (``InvalidError``, ``PolicyError``), the wire contract's
``PayloadError`` and provisioning's errors answer 422 with their message; a
bare ``ValueError`` escaping a route is a programming error and answers 500,
its message kept out of the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.api import login
from support.central import central_services

from central.app import create_app
from central.errors import InvalidError, PolicyError
from central.operators.auth import create_operator
from edge.protocol import PayloadError
from provisioning.ca import CAError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from fastapi import FastAPI

    from central.api.deps import Services

PASSWORD = "correct horse battery"
RAISED: dict[str, Exception] = {
    "invalid": InvalidError("expected a version like 1.2.0, got 'x'"),
    "policy": PolicyError("device cam-1: heartbeat_s: expected ≤ 3600, got 9999"),
    "payload": PayloadError("body.fps: expected ≤ 30, got 99"),
    "provisioning": CAError("expected a CSR for cam-1, got one for cam-2"),
    "bug": ValueError("secret internals: list.index(x): x not in list"),
}


def _raiser(exc: Exception) -> Callable[[], None]:
    def boom() -> None:
        raise exc

    return boom


def _app(tmp_path: Path) -> tuple[FastAPI, Services]:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    svc = central_services(url, tmp_path, checkpoint_every=3)
    app = create_app(svc)
    for name, exc in RAISED.items():
        app.add_api_route(f"/test-raise/{name}", _raiser(exc))
    return app, svc


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app, svc = _app(tmp_path)
    with Session(svc.engine) as session:
        create_operator(
            session,
            username="police",
            password=PASSWORD,
            role="police",
            now=svc.clock.now(),
        )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    svc.engine.dispose()


@pytest.mark.parametrize("name", ["invalid", "policy", "payload", "provisioning"])
def test_a_refusal_is_422_with_its_message(client: TestClient, name: str) -> None:
    answer = client.get(f"/test-raise/{name}")
    assert answer.status_code == 422
    assert answer.json()["detail"] == str(RAISED[name])


def test_a_bare_value_error_is_a_500_that_tells_nothing(client: TestClient) -> None:
    answer = client.get("/test-raise/bug")
    assert answer.status_code == 500
    assert "secret internals" not in answer.text


def test_a_real_refusal_still_names_what_was_wrong(client: TestClient) -> None:
    police = login(client, "police", PASSWORD)
    answer = client.post(
        "/api/v1/police/beats",
        json={"name": "一号巡区", "geometry": {"type": "Point", "coordinates": [1, 2]}},
        headers=police,
    )
    assert answer.status_code == 422
    assert "expected" in answer.json()["detail"]
    assert "Polygon" in answer.json()["detail"]


def test_a_malformed_plate_in_a_query_is_422_naming_the_character(
    client: TestClient,
) -> None:
    police = login(client, "police", PASSWORD)
    answer = client.get("/api/v1/plates/sightings?plate=0000000", headers=police)
    assert answer.status_code == 422
    assert "character 1 '0' cannot be there" in answer.json()["detail"]
