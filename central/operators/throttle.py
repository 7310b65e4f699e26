"""Login back-off: how many failures an account or an address may make, and when.

A pure core over values: :func:`retry_after` says how long a key (an account
or a client address) must wait, :func:`on_failure` counts one failed login
and says whether it started a lockout. Storing the counters, reading the
clock and answering HTTP 429 are left to :mod:`central.operators.sessions` and the
login route.

The rule: ``free`` failures within ``window`` cost nothing; the next one
locks the key for ``base_lock``, and every further failure after a lock has
ended locks it again for twice as long, up to ``max_lock``. A key forgets
its failures once ``window`` has passed since the run began (or since its
last lock ended).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How many failures a key may make and how long it waits after."""

    free: int = 5
    window: timedelta = timedelta(minutes=15)
    base_lock: timedelta = timedelta(seconds=30)
    max_lock: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        if self.free < 1:
            raise ValueError(f"expected at least one free failure, got {self.free}")
        if not timedelta(0) < self.base_lock <= self.max_lock:
            raise ValueError(
                f"expected 0 < base_lock <= max_lock, got {self.base_lock} "
                f"and {self.max_lock}"
            )


ACCOUNT_POLICY = ThrottlePolicy()
# One address may be a whole office behind NAT, so it gets more room.
ADDRESS_POLICY = ThrottlePolicy(free=20)


@dataclass(frozen=True, slots=True)
class Attempts:
    """The failed logins of one key in its current run."""

    failures: int
    window_start: datetime
    locked_until: datetime | None = None
    lockouts: int = 0

    def __post_init__(self) -> None:
        if self.failures < 0 or self.lockouts < 0:
            raise ValueError(
                f"expected non-negative counts, got {self.failures} failures "
                f"and {self.lockouts} lockouts"
            )


def is_stale(state: Attempts, now: datetime, policy: ThrottlePolicy) -> bool:
    """Whether ``state`` is over and the key starts afresh."""
    since = state.locked_until or state.window_start
    return now >= since + policy.window


def retry_after(state: Attempts | None, now: datetime) -> int:
    """Whole seconds the key must still wait (0: it may try now)."""
    if state is None or state.locked_until is None or state.locked_until <= now:
        return 0
    return max(1, math.ceil((state.locked_until - now).total_seconds()))


def on_failure(
    state: Attempts | None, now: datetime, policy: ThrottlePolicy
) -> tuple[Attempts, bool]:
    """Count one failed login.

    Args:
        state: the key's counters, or None for a key never seen.
        now: when the login failed.
        policy: the key's allowance.

    Returns:
        The new counters and whether this failure started a lockout.
    """
    if state is None or is_stale(state, now, policy):
        state = Attempts(failures=0, window_start=now)
    state = replace(state, failures=state.failures + 1)
    if state.failures <= policy.free:
        return state, False
    # The exponent is capped so the product never overflows a timedelta.
    lock = min(policy.base_lock * (2 ** min(state.lockouts, 30)), policy.max_lock)
    return replace(state, locked_until=now + lock, lockouts=state.lockouts + 1), True
