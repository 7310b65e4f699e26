"""Two districts to attack across: the red team's world on the project's app.

:func:`build` starts from :func:`authworld.build` (real app, real database,
a :class:`ManualClock`) and adds the devices and operators the red team's
probes used: a kiosk, a handheld, a cabinet and a camera in ``north``, a
cabinet and a camera in ``south``, a north technician and traffic operator,
a county police officer, complaints desk and department. Not a conftest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from authworld import World
from authworld import build as build_auth
from sqlmodel import Session

from central.fleet import registry

if TYPE_CHECKING:
    from pathlib import Path

DEVICES = {
    "kiosk-n": ("kiosk", "north"),
    "hh-n": ("handheld", "north"),
    "cab-n": ("signal_controller", "north"),
    "cam-n": ("camera", "north"),
    "cab-s": ("signal_controller", "south"),
    "cam-s": ("camera", "south"),
}
OPERATORS = {
    "tech-n": ("technician", ["north"]),
    "traffic-n": ("traffic", ["north"]),
    "officer": ("police", ["*"]),
    "desk": ("complaints", ["*"]),
    "dept": ("department", ["*"]),
    "admin-n": ("admin", ["north"]),
}


def build(db_url: str, tmp_path: Path) -> World:
    """The auth world plus :data:`DEVICES` and :data:`OPERATORS` (and ``root``)."""
    world = build_auth(db_url, tmp_path)
    for name, (role, scope) in OPERATORS.items():
        world.add(name, role, scope)
    with Session(world.services.engine) as session:
        for device_id, (kind, site) in DEVICES.items():
            registry.register(
                session,
                device_id=device_id,
                kind=kind,
                site=site,
                now=world.clock.now(),
            )
    return world
