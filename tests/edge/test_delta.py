"""Deltas reproduce the release byte for byte, or are refused."""

from __future__ import annotations

import hashlib
import random

import pytest

from edge.ota.delta import DeltaError, apply_delta, make_delta


def release(seed: int, size: int = 400_000) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.getrandbits(8) for _ in range(size))


def test_a_one_module_change_costs_a_fraction_and_rebuilds_exactly() -> None:
    old = release(1)
    change = release(2, 20_000)
    new = old[:150_000] + change + old[170_000:]  # one module replaced
    delta = make_delta(old, new)
    assert len(delta) < 0.25 * len(new)
    rebuilt = apply_delta(
        old, delta, sha256=hashlib.sha256(new).hexdigest(), length=len(new)
    )
    assert rebuilt == new


def test_the_wrong_base_or_a_corrupt_delta_is_refused() -> None:
    old = release(1, 50_000)
    new = old[:20_000] + b"a new module" + old[20_000:]  # mostly references to old
    delta = make_delta(old, new)
    digest = hashlib.sha256(new).hexdigest()
    with pytest.raises(DeltaError):
        apply_delta(release(9, 50_000), delta, sha256=digest, length=len(new))
    with pytest.raises(DeltaError):
        apply_delta(old, delta[:-10] + b"0123456789", sha256=digest, length=len(new))
    with pytest.raises(DeltaError, match="expected"):
        apply_delta(old, delta, sha256="0" * 64, length=len(new))
