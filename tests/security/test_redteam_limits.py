"""Red-team findings on limits an anonymous caller lifted or never met.

Finding 11: any ``Authorization`` header (even ``x``) raised the body limit
from 64 KiB to 1 MiB, and an Open311 post without an api_key was read in
full (megabytes) before its 403.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from districtworld import build

from central.api.bodylimit import KIB, MIB

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from authworld import World


@pytest.fixture
def world(sqlite_url: str, tmp_path: Path) -> Iterator[World]:
    w = build(sqlite_url, tmp_path)
    with w.client:
        yield w
    w.services.engine.dispose()


def test_only_a_verified_token_lifts_the_anonymous_body_limit(world: World) -> None:
    big = json.dumps({"id": "x", "kind": "camera", "site": "a" * (200 * KIB)})
    forged = world.login("root")["Authorization"][:-4] + "AAAA"
    for header in ("x", "Bearer nonsense", "Bearer a.b.c", forged, "Basic cm9vdDp4"):
        answer = world.client.post(
            "/api/v1/devices",
            content=big,
            headers={"content-type": "application/json", "Authorization": header},
        )
        assert answer.status_code == 413, (header, answer.text)
        assert "without a token" in answer.json()["detail"]
    real = world.client.post(
        "/api/v1/devices",
        content=big,
        headers={"content-type": "application/json", **world.login("root")},
    )
    assert real.status_code == 422, real.text  # read and judged by the route


def test_an_open311_post_without_a_key_is_not_buffered(world: World) -> None:
    photo = b"\xff\xd8\xff" + b"A" * (2 * MIB)
    answer = world.client.post(
        "/open311/v2/requests.json",
        data={"service_code": "noise"},
        files={"media": ("a.jpg", photo, "image/jpeg")},
    )
    assert answer.status_code == 413, answer.text
    assert "api_key" in answer.json()[0]["description"]
    guessed = world.client.post(
        "/open311/v2/requests.json?api_key=guess",
        data={"service_code": "noise"},
        files={"media": ("a.jpg", photo, "image/jpeg")},
    )
    assert guessed.status_code == 413, guessed.text
