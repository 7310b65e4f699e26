"""Red-team findings on limits an anonymous caller lifted or never met.

Finding 11: any ``Authorization`` header (even ``x``) raised the body limit
from 64 KiB to 1 MiB, and an Open311 post without an api_key was read in
full (megabytes) before its 403.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx2
import pytest
import uvicorn
from authworld import PASSWORD
from districtworld import build
from support.kiosks import enrol_node
from support.waiting import wait_until

from central.api.bodylimit import KIB, MIB
from central.api.enrolment import GUESS_POLICY
from central.api.kiosk import LOOKUP_POLICY
from central.main import load_or_create_ca, proxy_options
from central.operators.throttle import ACCOUNT_POLICY, ADDRESS_POLICY

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from authworld import World
    from httpx2 import Response


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


def test_a_burst_of_guesses_is_counted_one_by_one(world: World) -> None:
    # Finding 10 (b): 30 concurrent wrong passwords had 22 checked, not 5.
    def guess(i: int) -> int:
        answer = world.client.post(
            "/api/v1/auth/token",
            data={"username": "root", "password": f"wrong-guess-{i:04d}"},
        )
        return answer.status_code

    with ThreadPoolExecutor(10) as pool:
        codes = Counter(pool.map(guess, range(30)))
    assert set(codes) <= {401, 429}, codes
    assert codes[401] <= ACCOUNT_POLICY.free + 1, codes
    assert (
        world.client.post(
            "/api/v1/auth/token", data={"username": "root", "password": PASSWORD}
        ).status_code
        == 429
    )


def test_x_forwarded_for_is_believed_only_from_named_proxies(
    world: World, tmp_path: Path
) -> None:
    # Finding 10 (a): uvicorn trusts 127.0.0.1 by default, so a header chose
    # the address that login back-off counts.
    settings = world.services.settings
    assert proxy_options(settings) == {"proxy_headers": False}
    config = uvicorn.Config(
        world.client.app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        **proxy_options(settings),
    )
    server = uvicorn.Server(config)
    web = threading.Thread(target=server.run, daemon=True)
    web.start()
    try:
        wait_until(lambda: server.started)
        port = server.servers[0].sockets[0].getsockname()[1]
        codes = [
            httpx2.post(
                f"http://127.0.0.1:{port}/api/v1/auth/token",
                data={"username": f"nobody{i}", "password": "wrong password"},
                headers={"X-Forwarded-For": f"10.9.{i}.1"},
                timeout=10,
            ).status_code
            for i in range(ADDRESS_POLICY.free + 2)
        ]
        assert codes[-1] == 429, codes  # one address, whatever the header said
    finally:
        server.should_exit = True
        web.join(timeout=10)
    trusted = settings.model_copy(update={"forwarded_allow_ips": "10.0.0.2"})
    assert proxy_options(trusted) == {
        "proxy_headers": True,
        "forwarded_allow_ips": "10.0.0.2",
    }


def test_bad_enrolment_codes_are_throttled_and_audited_once(world: World) -> None:
    # Finding 12: 200 bogus codes added 200 audit records.
    world.services.ca = load_or_create_ca(
        world.services.settings, now=world.clock.now()
    )
    before = world.audit_count()
    codes = Counter(
        world.client.post(
            f"/api/v1/enrolment/ZZZZ-{i:04d}",
            json={"csr": "x", "client_time": world.clock.now().isoformat()},
        ).status_code
        for i in range(40)
    )
    assert codes[429] >= 40 - GUESS_POLICY.free - 1, codes
    assert world.audit_count() - before <= 1
    assert world.client.get("/api/v1/enrolment/ZZZZ-9999").status_code == 429


def test_changing_ones_password_is_throttled(world: World) -> None:
    # Finding 13: 30 wrong ``current`` passwords were never refused.
    auth = world.login("tech-n")
    codes = [
        world.client.post(
            "/api/v1/auth/password",
            json={"current": f"guess number {i}", "new": "a brand new passphrase 1"},
            headers=auth,
        ).status_code
        for i in range(ACCOUNT_POLICY.free + 3)
    ]
    assert codes[: ACCOUNT_POLICY.free] == [400] * ACCOUNT_POLICY.free
    assert codes[-1] == 429, codes
    right = world.client.post(
        "/api/v1/auth/password",
        json={"current": PASSWORD, "new": "a brand new passphrase 1"},
        headers=auth,
    )
    assert right.status_code == 429  # even the right one waits out the lock


def test_guessing_complaint_follow_up_codes_is_throttled(world: World) -> None:
    # Suspicion: /api/v1/kiosk/status/{code} looked up a 40-bit code unthrottled.
    # (Only an enrolled kiosk may ask at all: test_redteam_kiosk.py.)
    ca = world.services.ca = load_or_create_ca(
        world.services.settings, now=world.clock.now()
    )
    kiosk = enrol_node(
        world.services.engine, ca, device_id="kiosk-g", now=world.clock.now()
    )

    def look_up(code: str) -> Response:
        path = f"/api/v1/kiosk/status/{code}"
        signed = kiosk.headers("GET", path, now=world.clock.now())
        return world.client.get(path, headers=signed)

    codes = Counter(
        look_up(f"ZZ{i:06d}").status_code for i in range(LOOKUP_POLICY.free + 5)
    )
    assert codes[404] <= LOOKUP_POLICY.free + 1, codes
    assert codes[429] >= 4, codes
    locked = look_up("ZZ999999")
    assert locked.status_code == 429
    assert "查询次数过多" in locked.json()["detail"]
