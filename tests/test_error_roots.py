"""Each package has one root error, as ``edge`` and ``central`` do.

Imports every module of each package and checks that every exception class
it defines descends from the package's root, so a caller can catch one type
per package and a new error that forgets its root fails here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from starlette.exceptions import HTTPException

from baling.errors import BalingError
from camera_node.errors import CameraError
from central.errors import CentralError
from edge.errors import EdgeError
from edge.protocol.errors import PayloadError
from firmware_sim.errors import SimulatorError
from handheld.errors import HandheldError
from kiosk.errors import KioskError
from provisioning.errors import ProvisioningError
from signal_controller.errors import SignalError

ROOTS: dict[str, tuple[type[Exception], ...]] = {
    "baling": (BalingError,),
    "camera_node": (CameraError,),
    "central": (CentralError,),
    # the wire contract's PayloadError is edge's second root: a ValueError both
    # ends raise on bad bytes (edge/errors.py says so)
    "edge": (EdgeError, PayloadError),
    "firmware_sim": (SimulatorError,),
    "handheld": (HandheldError,),
    "kiosk": (KioskError,),
    "provisioning": (ProvisioningError,),
    "signal_controller": (SignalError,),
}
# Modules that need a system program or device to import are read as text
# only by the other tests; none are skipped here today.
SKIP: frozenset[str] = frozenset()


def _errors_of(package: str) -> list[type[BaseException]]:
    root = importlib.import_module(package)
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if info.name in SKIP or ".migrations" in info.name:
            continue
        module = importlib.import_module(info.name)
        found += [
            cls
            for _name, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, BaseException)
            and cls.__module__ == info.name
            and not issubclass(cls, HTTPException)  # a response, not a domain error
        ]
    return found


@pytest.mark.parametrize("package", sorted(ROOTS))
def test_every_error_of_a_package_descends_from_its_root(package: str) -> None:
    errors = _errors_of(package)
    assert errors, f"expected {package} to define its errors, got none"
    strays = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in errors
        if not issubclass(cls, ROOTS[package])
    ]
    assert strays == []
