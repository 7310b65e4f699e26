"""Wave 8 of the red team against the guidance API (诱导).

A district's traffic operator may define links only in their district, but
a link's cameras and loop stations were never checked: a north operator
defined a north link between two south cameras and read, through it, the
south's travel times (every vehicle the south's cameras re-identify). Now
each device a link names must be registered and in the caller's scope.
The plate hashes' key, found readable by others, is made private again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from authworld import World, build
from support.api import register

from central.guidance.service import SECRET_FILE, load_or_create_secret

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    where = tmp_path_factory.mktemp("wave8-guidance")
    w = build(f"sqlite:///{where / 'central.sqlite3'}", where)
    register(w.services.engine, "cam-n1", "cam-n2", kind="camera", site="north")
    register(w.services.engine, "cam-s1", "cam-s2", kind="camera", site="south")
    register(w.services.engine, "det-s1", "det-s2", kind="loop_detector", site="south")
    w.add("w8-traffic-north", "traffic", scope=["north"])
    with w.client:
        yield w
    w.services.engine.dispose()


def _put(world: World, link_id: str, **fields: object) -> int:
    body = {"site": "north", "length_m": 1000, "free_flow_s": 90, **fields}
    headers = world.login("w8-traffic-north")
    url = f"/api/v1/guidance/links/{link_id}"
    return world.client.put(url, json=body, headers=headers).status_code


def test_a_link_names_only_devices_in_the_callers_district(world: World) -> None:
    assert _put(world, "n-own", origin="cam-n1", destination="cam-n2") == 200
    assert _put(world, "n-spy", origin="cam-s1", destination="cam-s2") == 403
    assert _put(world, "n-half", origin="cam-n1", destination="cam-s2") == 403
    loops = [{"up": "det-s1", "down": "det-s2", "lanes": [1]}]
    assert _put(world, "n-loops", loops=loops) == 403
    assert _put(world, "n-ghost", origin="cam-n1", destination="cam-x") == 422


def test_a_plate_key_readable_by_others_is_made_private(tmp_path: Path) -> None:
    # With the key, the ~10^8 plates' hashes are reversed in minutes.
    first = load_or_create_secret(tmp_path)
    key = tmp_path / SECRET_FILE
    assert key.stat().st_mode & 0o777 == 0o600
    key.chmod(0o644)  # as a copy or a restore from a backup leaves it
    assert load_or_create_secret(tmp_path) == first
    assert key.stat().st_mode & 0o777 == 0o600
